// Lines of a text stream in a buffer of bounded size: the readers' constant-memory guarantee.
#pragma once

#include <cstdint>
#include <istream>
#include <string_view>
#include <vector>

namespace kvscope {

class LineReader {
 public:
  enum class Status { line, too_long, end };

  LineReader(std::istream& in, int64_t max_line_bytes);

  // The next line, without its '\n' (and a '\r' before it). The view stays valid until the next
  // call. A line longer than the limit is consumed up to its end and reported as too_long with
  // an empty view, so one huge line costs no more memory than the limit.
  Status next(std::string_view& line);

  // Makes the next call return the line just returned again (format detection peeks at it).
  void unread() { replay_ = true; }

  int64_t line_number() const { return line_number_; }  // 1-based, of the last line returned
  int64_t bytes_consumed() const { return consumed_; }
  size_t buffer_bytes() const { return buf_.capacity(); }  // bounded by the line limit

 private:
  bool fill();  // reads more input after the unconsumed bytes; false at end of input

  std::istream& in_;
  int64_t max_line_bytes_;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;  // unconsumed bytes are buf_[begin_, end_)
  bool eof_ = false;
  bool replay_ = false;
  Status last_status_ = Status::end;
  std::string_view last_line_;
  int64_t line_number_ = 0;
  int64_t consumed_ = 0;
};

}  // namespace kvscope
