#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/io/atomic_file.h"

namespace fs = std::filesystem;

static std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AtomicFile, WritesAndReplaces) {
  const std::string dir = ::testing::TempDir() + "/kvscope-atomic";
  fs::create_directories(dir);
  const std::string path = dir + "/out.txt";
  kvscope::write_file_atomically(path, [](std::ostream& o) { o << "first"; });
  EXPECT_EQ(slurp(path), "first");
  kvscope::write_file_atomically(path, [](std::ostream& o) { o << "second"; });
  EXPECT_EQ(slurp(path), "second");
}

TEST(AtomicFile, FailureLeavesTheOldFileAndNoTemporary) {
  const std::string dir = ::testing::TempDir() + "/kvscope-atomic-fail";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = dir + "/out.txt";
  kvscope::write_file_atomically(path, [](std::ostream& o) { o << "kept"; });
  EXPECT_THROW(kvscope::write_file_atomically(path,
                                              [](std::ostream& o) {
                                                o << "half";
                                                throw std::runtime_error("interrupted");
                                              }),
               std::runtime_error);
  EXPECT_EQ(slurp(path), "kept");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);
}

TEST(AtomicFile, UnwritableDirectoryIsAnError) {
  EXPECT_THROW(kvscope::write_file_atomically("/nonexistent-dir/x.txt", [](std::ostream&) {}),
               std::exception);
}
