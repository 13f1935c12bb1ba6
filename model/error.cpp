#include "model/error.h"

namespace kvscope {
namespace {
std::string format(const std::string& source, int64_t line, const std::string& field,
                   const std::string& reason) {
  std::string s = source;
  // Appended piecewise: GCC 12 at -O3 reports a false -Wrestrict on ":" + std::to_string(line).
  if (line > 0) {
    s += ':';
    s += std::to_string(line);
  }
  if (!field.empty()) s += ": " + field;
  return s + ": " + reason;
}
}  // namespace

InputError::InputError(std::string source, int64_t line, std::string field, std::string reason)
    : std::runtime_error(format(source, line, field, reason)),
      source_(std::move(source)),
      line_(line),
      field_(std::move(field)),
      reason_(std::move(reason)) {}

}  // namespace kvscope
