// Several output files that appear together or not at all: each is written in full to
// "<path>.tmp-<pid>" (the naming of atomic_file.h) and only commit() renames them onto their
// paths. A StagedFiles destroyed before commit() removes its temporaries, so a failure or an
// interrupt while staging leaves neither half-written files nor temporaries behind.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace kvscope {

class StagedFiles {
 public:
  StagedFiles() = default;
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;
  ~StagedFiles();

  // Writes the temporary for `path` now. Throws InputError naming `path` if it cannot be
  // written; anything write throws propagates (after this file's temporary is removed).
  void stage(const std::string& path, const std::function<void(std::ostream&)>& write);

  // Renames every staged file onto its path, in staging order (stage the file readers look for
  // first, e.g. the report itself, last).
  void commit();

  // Removes the temporaries without touching the targets.
  void discard();

  const std::vector<std::string>& paths() const { return targets_; }

 private:
  std::vector<std::string> targets_, temps_;
};

}  // namespace kvscope
