#include "sim/io/staged_files.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "model/error.h"

namespace kvscope {

StagedFiles::~StagedFiles() { discard(); }

void StagedFiles::stage(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  temps_.push_back(tmp);
  targets_.push_back(path);
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path, "", std::string("cannot write: ") + std::strerror(errno));
  write(out);
  out.flush();
  if (!out) throw InputError(path, "", "write failed (disk full?)");
}

void StagedFiles::commit() {
  for (size_t i = 0; i < temps_.size(); ++i) {
    std::error_code ec;
    std::filesystem::rename(temps_[i], targets_[i], ec);
    if (ec)
      throw InputError(targets_[i], "",
                       "cannot move the finished file into place: " + ec.message());
  }
  temps_.clear();
}

void StagedFiles::discard() {
  for (const auto& t : temps_) {
    std::error_code ignored;
    std::filesystem::remove(t, ignored);
  }
  temps_.clear();
}

}  // namespace kvscope
