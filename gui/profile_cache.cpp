#include "gui/profile_cache.h"

#include <system_error>

namespace kvscope::gui {

const ProfileCache::Fitted& ProfileCache::get(const std::string& path) {
  std::error_code ec;
  const auto modified = std::filesystem::last_write_time(path, ec);
  const std::uintmax_t size = ec ? 0 : std::filesystem::file_size(path, ec);
  // A path that cannot be examined is never taken from the cache: load_profile reports it.
  if (auto it = entries_.find(path);
      !ec && it != entries_.end() && it->second.modified == modified && it->second.size == size)
    return it->second.fitted;
  entries_.erase(path);
  Fitted fitted;
  fitted.profile = load_profile(path);
  fitted.model = std::make_shared<const CalibratedCostModel>(fitted.profile);
  Entry& e = entries_[path];
  e.modified = modified;
  e.size = size;
  e.fitted = std::move(fitted);
  return e.fitted;
}

Resolved resolve(const Session& s, ProfileCache& profiles) {
  if (s.profile_path.empty()) return resolve(s);
  // The model and the method parameters, checked as the CLI checks them; then the profile in
  // place of the preset's roofline, as `--profile` with an explicit `--gpu` (which the session's
  // command lines always pass) makes it: measured on that preset's device, or refused.
  Session by_preset = s;
  by_preset.profile_path.clear();
  Resolved r = resolve(by_preset);
  const ProfileCache::Fitted& fitted = profiles.get(s.profile_path);
  check_profile_matches(fitted.profile, s.gpu);
  r.ops = fitted.model;
  return r;
}

}  // namespace kvscope::gui
