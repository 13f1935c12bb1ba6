// Builds without Qt 6 (Gui, Svg) write no PDF; the CLI checks pdf_supported() before any work.
#include <stdexcept>

#include "sim/report/document.h"

namespace kvscope::report {

bool pdf_supported() { return false; }

void render_pdf(const Document&, std::ostream&) {
  throw std::runtime_error(
      "PDF output needs kvscope built with Qt 6 (Gui and Svg); this build has no Qt. "
      "Write .html or .md instead.");
}

}  // namespace kvscope::report
