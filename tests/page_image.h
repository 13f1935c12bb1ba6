// Renders a PDF page with pdftoppm (poppler-utils) and reads it back, so tests can check that a
// report's page shows something: text (dark pixels) and charts (coloured pixels).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvscope::testing {

struct PageImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
  double fraction_non_white() const;
  // Pixels clearly coloured (max - min channel > 60): the series colours, not black text.
  double fraction_coloured() const;
};

// Page `page` (1-based) of `pdf` at `dpi`; empty image (width 0) and `error` set on failure.
PageImage render_pdf_page(const std::string& pdf, int page, int dpi, std::string& error);

// Reads a binary PPM (P6, maxval 255).
PageImage read_ppm(const std::string& path, std::string& error);

// Number of pages pdfinfo reports, or -1.
int pdf_page_count(const std::string& pdf);

}  // namespace kvscope::testing
