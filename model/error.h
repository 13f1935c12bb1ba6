// Errors raised at kvscope's input boundaries (configs, traces, profiles, CLI arguments).
// Every message names where the bad input is, so a user can go straight to it:
//   "<source>:<line>: <field>: <reason>"   (line omitted when it does not apply)
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace kvscope {

class InputError : public std::runtime_error {
 public:
  InputError(std::string source, int64_t line, std::string field, std::string reason);
  InputError(std::string source, std::string field, std::string reason)
      : InputError(std::move(source), 0, std::move(field), std::move(reason)) {}

  const std::string& source() const { return source_; }
  int64_t line() const { return line_; }  // 1-based; 0 when the input has no lines
  const std::string& field() const { return field_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string source_;
  int64_t line_;
  std::string field_;
  std::string reason_;
};

}  // namespace kvscope
