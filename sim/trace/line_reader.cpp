#include "sim/trace/line_reader.h"

#include <algorithm>
#include <cstring>

namespace kvscope {

namespace {
constexpr size_t kChunkBytes = size_t{256} << 10;
}

LineReader::LineReader(std::istream& in, int64_t max_line_bytes)
    : in_(in), max_line_bytes_(std::max<int64_t>(1, max_line_bytes)) {}

bool LineReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  // Grow only when an unfinished line fills the buffer (the caller stops at the line limit):
  // for ordinary lines the buffer keeps the size of its first chunk.
  if (buf_.empty()) buf_.resize(std::min(kChunkBytes, static_cast<size_t>(max_line_bytes_) + 2));
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
  in_.read(buf_.data() + end_, static_cast<std::streamsize>(buf_.size() - end_));
  const auto got = static_cast<size_t>(in_.gcount());
  if (got == 0) {
    eof_ = true;
    return false;
  }
  end_ += got;
  return true;
}

LineReader::Status LineReader::next(std::string_view& line) {
  if (replay_) {
    replay_ = false;
    line = last_line_;
    return last_status_;
  }
  const auto limit = static_cast<size_t>(max_line_bytes_);
  size_t scanned = 0;  // bytes after begin_ already known to hold no '\n'
  for (;;) {
    const char* from = buf_.data() + begin_;
    const size_t unscanned = end_ - begin_ - scanned;
    const void* nl = unscanned > 0 ? std::memchr(from + scanned, '\n', unscanned) : nullptr;
    if (nl != nullptr || (eof_ && end_ > begin_)) {
      const size_t len =
          nl != nullptr ? static_cast<size_t>(static_cast<const char*>(nl) - from) : end_ - begin_;
      const size_t take = nl != nullptr ? len + 1 : len;
      ++line_number_;
      consumed_ += static_cast<int64_t>(take);
      begin_ += take;
      if (len > limit) {
        line = {};
        last_status_ = Status::too_long;
      } else {
        line = std::string_view(from, len);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        last_status_ = Status::line;
      }
      last_line_ = line;
      return last_status_;
    }
    scanned = end_ - begin_;
    if (scanned > limit) {
      // Over the limit with no end in sight: drop what we hold and skip to the next '\n'.
      ++line_number_;
      consumed_ += static_cast<int64_t>(scanned);
      begin_ = end_ = 0;
      while (fill()) {
        const void* end_nl = std::memchr(buf_.data(), '\n', end_);
        if (end_nl != nullptr) {
          const size_t take =
              static_cast<size_t>(static_cast<const char*>(end_nl) - buf_.data()) + 1;
          consumed_ += static_cast<int64_t>(take);
          begin_ = take;
          break;
        }
        consumed_ += static_cast<int64_t>(end_);
        begin_ = end_ = 0;
      }
      line = last_line_ = {};
      return last_status_ = Status::too_long;
    }
    if (!fill() && end_ == begin_) {
      line = last_line_ = {};
      return last_status_ = Status::end;
    }
    // fill() moved the unconsumed bytes to the front; `scanned` is relative, so still right.
  }
}

}  // namespace kvscope
