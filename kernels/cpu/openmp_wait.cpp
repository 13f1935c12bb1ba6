#include "kernels/cpu/openmp_wait.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace kvscope::kernels::cpu {

std::string openmp_wait_policy() {
  if (const char* p = std::getenv("OMP_WAIT_POLICY"); p && *p) {
    std::string v(p);
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return v;
  }
  if (const char* s = std::getenv("GOMP_SPINCOUNT"); s && *s) return std::string("spin ") + s;
  return "default (spin, then sleep)";
}

void use_passive_openmp_wait(char** argv) {
  const char* p = std::getenv("OMP_WAIT_POLICY");
  const char* s = std::getenv("GOMP_SPINCOUNT");
  if ((p && *p) || (s && *s) || !argv || !argv[0]) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  // /proc/self/exe is this program even when argv[0] is a bare name found on PATH.
  execv("/proc/self/exe", argv);
  execvp(argv[0], argv);
  // Neither worked: carry on as loaded; openmp_wait_policy() still reports what libgomp read.
  unsetenv("OMP_WAIT_POLICY");
}

}  // namespace kvscope::kernels::cpu
