#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/error.h"
#include "sim/io/staged_files.h"

namespace fs = std::filesystem;

namespace {
std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/kvscope-staged-" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}
std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
size_t entries(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}
}  // namespace

TEST(StagedFiles, NothingAppearsBeforeCommit) {
  const std::string dir = fresh_dir("commit");
  kvscope::StagedFiles files;
  files.stage(dir + "/a.csv", [](std::ostream& o) { o << "a"; });
  files.stage(dir + "/report.html", [](std::ostream& o) { o << "r"; });
  EXPECT_FALSE(fs::exists(dir + "/a.csv"));
  EXPECT_FALSE(fs::exists(dir + "/report.html"));
  files.commit();
  EXPECT_EQ(slurp(dir + "/a.csv"), "a");
  EXPECT_EQ(slurp(dir + "/report.html"), "r");
  EXPECT_EQ(entries(dir), 2u);  // no temporaries left
}

TEST(StagedFiles, FailureOrDestructionLeavesOldFilesAndNoTemporaries) {
  const std::string dir = fresh_dir("fail");
  std::ofstream(dir + "/report.html") << "old";
  {
    kvscope::StagedFiles files;
    files.stage(dir + "/a.csv", [](std::ostream& o) { o << "a"; });
    EXPECT_THROW(files.stage(dir + "/report.html",
                             [](std::ostream& o) {
                               o << "half";
                               throw std::runtime_error("interrupted");
                             }),
                 std::runtime_error);
  }  // never committed
  EXPECT_EQ(slurp(dir + "/report.html"), "old");
  EXPECT_EQ(entries(dir), 1u);
}

TEST(StagedFiles, UnwritableDirectoryNamesThePath) {
  kvscope::StagedFiles files;
  try {
    files.stage("/nonexistent-dir/x/report.html", [](std::ostream& o) { o << "x"; });
    FAIL() << "expected InputError";
  } catch (const kvscope::InputError& e) {
    EXPECT_EQ(e.source(), "/nonexistent-dir/x/report.html");
  }
}
