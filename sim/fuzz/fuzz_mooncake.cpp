// libFuzzer target for the mooncake trace reader (scripts/fuzz.sh builds and runs it).
#include "sim/fuzz/fuzz_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kvscope::fuzz::read_trace(data, size, kvscope::TraceFormat::mooncake);
  return 0;
}
