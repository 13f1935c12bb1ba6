// kvscope: predicts and checks what Fourier-approximated KV caches and CCV caching do to an
// LLM's memory and latency. This file only dispatches to the subcommands.
#include <iostream>
#include <string>

#include "kernels/backend.h"
#include "sim/cli/commands.h"
#include "sim/cli/options.h"

namespace {
void print_help() {
  std::cout << "usage: kvscope <command> [options]\n\n"
               "kvscope models, replays and checks two ways of making LLM inference cheaper:\n"
               "a Fourier-approximated KV cache and Compressed Context Vector (CCV) caching.\n\n"
               "commands:\n";
  for (const auto& c : kvscope::cli::commands())
    std::cout << "  " << c.name << std::string(12 - c.name.size(), ' ') << c.summary << "\n";
  std::cout << "\nRun 'kvscope <command> --help' for a command's options.\n"
               "Exit codes: 0 success, 1 bad input file or failed run, 2 bad command line.\n";
}
}  // namespace

int main(int argc, char** argv) {
  using namespace kvscope::cli;
  kvscope::kernels::prepare_process_for_backends(argv);
  if (argc < 2) {
    print_help();
    return kUsage;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_help();
    return kOk;
  }
  if (name == "--version") {
    std::cout << "kvscope 0.1.0\n"
              << "CPU backend's idle OpenMP threads: " << kvscope::kernels::cpu_thread_wait_policy()
              << "\n";
    return kOk;
  }
  for (const auto& c : commands()) {
    if (c.name == name) return guarded(name, c.run, Args(argv + 2, argv + argc));
  }
  std::cerr << "kvscope: unknown command '" << name << "'. Run 'kvscope --help'.\n";
  return kUsage;
}
