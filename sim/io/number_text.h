// Numbers as the shortest decimal text that reads back as exactly the same double
// (std::to_chars' round-trip form: 0.1 is "0.1", not "0.10000000000000001"). Every table,
// report and command line kvscope writes uses it, so a number copied from one reads back
// equal to the one computed.
#pragma once

#include <charconv>
#include <cmath>
#include <string>

namespace kvscope {

// Appends the text of a finite `v` to `out` without a temporary string (replay tables hold
// millions of cells). Non-finite values are the caller's to spell.
inline void append_exact_number(std::string& out, double v) {
  char buf[32];  // the longest round-trip double, "-2.2250738585072014e-308", is 24 characters
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// The text of `v`; "nan", "inf" and "-inf" for the non-finite.
inline std::string exact_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string out;
  append_exact_number(out, v);
  return out;
}

}  // namespace kvscope
