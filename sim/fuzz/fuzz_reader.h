// The body every trace-reader fuzz target shares: read the input as a trace of one format under
// both bad-record policies, accept InputError as the answer to bad input, and trap on anything
// else: a crash, a sanitizer report, another exception, or a record that breaks what the
// readers promise (records the replay would choke on).
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "model/error.h"
#include "sim/ccv/context.h"
#include "sim/trace/trace.h"

namespace kvscope::fuzz {

inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

inline void read_trace(const uint8_t* data, size_t size, TraceFormat format) {
  ReaderLimits limits;
  limits.max_line_bytes = 1 << 16;  // small, so that over-long lines are reachable too
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (BadRecordPolicy policy : {BadRecordPolicy::stop, BadRecordPolicy::skip}) {
    std::istringstream in(text);
    try {
      auto reader = open_trace_stream(in, "fuzz", format, policy, limits);
      TraceRecord r;
      double prev = 0;
      int64_t line = 0;
      while (reader->next(r)) {
        check(std::isfinite(r.timestamp_ms) && r.timestamp_ms >= prev);
        check(r.input_tokens >= 1 && r.input_tokens <= limits.max_tokens);
        check(r.output_tokens >= 0 && r.output_tokens <= limits.max_tokens);
        check(r.line > line);
        check(r.block_size >= 1);
        check(r.tokens.empty() || static_cast<int64_t>(r.tokens.size()) == r.input_tokens);
        for (float v : r.ctx) check(std::isfinite(v));
        const ContextSignature sig = context_signature(r);
        const double self = context_similarity(sig, sig);
        check(sig.empty() || std::abs(self - 1.0) < 1e-6);
        prev = r.timestamp_ms;
        line = r.line;
      }
      check(reader->bytes_read() <= static_cast<int64_t>(size));
    } catch (const InputError&) {
      // a clear error is the right answer to bad input
    }
  }
}

}  // namespace kvscope::fuzz
