// The kvscope subcommands. Each lives in its own cmd_<name>.cpp and is listed in commands.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvscope::cli {

using Args = std::vector<std::string>;  // arguments after the subcommand name

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(const Args& args);  // returns the process exit code
};

const std::vector<Command>& commands();

int run_model(const Args& args);
int run_calibrate(const Args& args);
int run_replay(const Args& args);
int run_plan(const Args& args);
int run_check(const Args& args);

}  // namespace kvscope::cli
