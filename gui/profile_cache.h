// Calibration profiles loaded and fitted once per file. The analytic view is recomputed after
// every change of a parameter (each step of a dragged slider), and loading and fitting a step
// profile (results/profiles/h200-llama-3.1-8b.json: 10,000 lines) each time would make the
// window lag; a profile is read again only when its file's modification time or size changes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "gui/session.h"
#include "model/calibration.h"

namespace kvscope::gui {

class ProfileCache {
 public:
  struct Fitted {
    CalibrationProfile profile;
    std::shared_ptr<const CalibratedCostModel> model;
  };
  // The profile at `path` and the model fitted to it. Throws InputError naming the file and the
  // field, as load_profile and the fit do; a profile that fails is not kept.
  const Fitted& get(const std::string& path);

 private:
  struct Entry {
    std::filesystem::file_time_type modified;
    std::uintmax_t size = 0;
    Fitted fitted;
  };
  std::map<std::string, Entry> entries_;
};

// resolve(s) with the session's calibration profile, if any, taken from `profiles`.
Resolved resolve(const Session& s, ProfileCache& profiles);

}  // namespace kvscope::gui
