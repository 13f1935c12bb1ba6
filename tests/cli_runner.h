// Runs the kvscope executable from tests and captures what it prints and its exit code.
#pragma once

#include <string>

namespace kvscope::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// `args` is appended to the kvscope binary's path and run through /bin/sh.
CliResult run_cli(const std::string& args);

}  // namespace kvscope::testing
