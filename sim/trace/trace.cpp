#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sim/trace/record_reader.h"

namespace kvscope {

std::string_view trace_format_name(TraceFormat f) {
  if (f == TraceFormat::automatic) return kAutomaticTraceFormatName;
  for (const auto& t : kTraceFormats)
    if (t.format == f) return t.name;
  return "?";
}

std::optional<TraceFormat> parse_trace_format(std::string_view s) {
  if (s == kAutomaticTraceFormatName || s == "automatic") return TraceFormat::automatic;
  for (const auto& t : kTraceFormats)
    if (s == t.name) return t.format;
  return std::nullopt;
}

namespace {

// "a, b or c"
std::string listed(const std::vector<std::string_view>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i + 1 == parts.size() ? " or " : ", ";
    out += parts[i];
  }
  return out;
}

}  // namespace

std::string trace_format_descriptions() {
  std::vector<std::string_view> parts;
  for (const auto& t : kTraceFormats) parts.push_back(t.description);
  return listed(parts);
}

std::string trace_format_choices() {
  std::vector<std::string_view> parts{kAutomaticTraceFormatName};
  for (const auto& t : kTraceFormats) parts.push_back(t.name);
  return listed(parts);
}

namespace {
bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

std::string number(double v) {
  std::ostringstream s;
  s.precision(15);
  s << v;
  return s.str();
}
}  // namespace

std::optional<TraceFormat> detect_trace_format(std::string_view line) {
  const size_t first = line.find_first_not_of(" \t\xEF\xBB\xBF");  // blanks, a UTF-8 BOM
  if (first == std::string_view::npos) return std::nullopt;
  if (line[first] == '{') {
    for (const char* key : {"\"block_size\"", "\"session\"", "\"tokens\"", "\"ctx\""})
      if (line.find(key) != std::string_view::npos) return TraceFormat::kvscope;
    return TraceFormat::mooncake;
  }
  if (line.substr(first).starts_with("TIMESTAMP")) return TraceFormat::azure;
  return std::nullopt;
}

RecordReader::RecordReader(std::istream& in, std::string source, BadRecordPolicy policy,
                           const ReaderLimits& limits, FieldNames names)
    : lines_(in, limits.max_line_bytes),
      source_(std::move(source)),
      names_(names),
      policy_(policy),
      limits_(limits) {}

void RecordReader::fail(const std::string& field, const std::string& reason) const {
  throw BadField{field, reason};
}

void RecordReader::check_common(const TraceRecord& r) {
  const char* ts = names_.timestamp;
  if (!std::isfinite(r.timestamp_ms)) fail(ts, "must be a finite number");
  if (records_ > 0 && r.timestamp_ms < prev_timestamp_ms_)
    fail(ts, "out of order: " + number(r.timestamp_ms) + " ms is earlier than " +
                 number(prev_timestamp_ms_) + " ms at line " + std::to_string(prev_line_));
  if (r.timestamp_ms < 0) fail(ts, "must not be negative, got " + number(r.timestamp_ms));
  if (r.timestamp_ms > limits_.max_timestamp_ms)
    fail(ts, number(r.timestamp_ms) + " ms is beyond any real trace (limit " +
                 number(limits_.max_timestamp_ms) + " ms)");
  const std::string too_long = "longer than " + std::to_string(limits_.max_tokens) + " tokens";
  if (r.input_tokens < 1) fail(names_.input, "must be at least 1 token");
  if (r.input_tokens > limits_.max_tokens) fail(names_.input, too_long);
  if (r.output_tokens < 0) fail(names_.output, "must not be negative");
  if (r.output_tokens > limits_.max_tokens) fail(names_.output, too_long);
}

bool RecordReader::next(TraceRecord& r) {
  std::string_view line;
  for (;;) {
    const LineReader::Status st = lines_.next(line);
    if (st == LineReader::Status::end) {
      if (records_ > 0) return false;
      if (skipped_ > 0)
        throw InputError(source_, "trace",
                         "no good records (" + std::to_string(skipped_) +
                             " bad ones skipped; the first: " + first_error_ + ")");
      throw InputError(source_, lines_.line_number(), "trace",
                       nonblank_ > 0 ? "no records after the header" : "empty: no records");
    }
    const int64_t n = lines_.line_number();
    try {
      if (st == LineReader::Status::too_long)
        fail("line", "longer than " + std::to_string(limits_.max_line_bytes) + " bytes");
      if (is_blank(line)) continue;
      if (nonblank_++ == 0 && header(line)) continue;
      parse(line, r);
      r.line = n;
      check_common(r);
    } catch (const BadField& e) {
      const InputError err(source_, n, e.field, e.reason);
      if (policy_ == BadRecordPolicy::stop) throw err;
      if (skipped_++ == 0) first_error_ = err.what();
      continue;
    }
    ++records_;
    prev_timestamp_ms_ = r.timestamp_ms;
    prev_line_ = n;
    return true;
  }
}

std::unique_ptr<TraceReader> open_trace_stream(std::istream& in, const std::string& source,
                                               TraceFormat format, BadRecordPolicy policy,
                                               const ReaderLimits& limits) {
  if (format == TraceFormat::automatic) {
    // Peek at the first non-blank line through a reader's own LineReader, then hand it back.
    LineReader peek(in, limits.max_line_bytes);
    std::string_view line;
    LineReader::Status st;
    while ((st = peek.next(line)) == LineReader::Status::line && is_blank(line)) {
    }
    if (st == LineReader::Status::end) throw InputError(source, "trace", "empty: no records");
    if (st == LineReader::Status::too_long)
      throw InputError(source, peek.line_number(), "line",
                       "longer than " + std::to_string(limits.max_line_bytes) +
                           " bytes; cannot tell the format");
    const auto f = detect_trace_format(line);
    if (!f)
      throw InputError(source, peek.line_number(), "format",
                       "not a Mooncake/kvscope JSONL record nor the Azure CSV header "
                       "TIMESTAMP,ContextTokens,GeneratedTokens; give --format");
    format = *f;
    in.clear();
    in.seekg(0);
    if (!in) throw InputError(source, "format", "cannot rewind the input after detection");
  }
  if (format == TraceFormat::azure) return make_azure_reader(in, source, policy, limits);
  return make_jsonl_reader(in, source, format, policy, limits);
}

namespace {
// A file trace owns its stream; the reader it wraps refers to it.
class FileTrace final : public TraceReader {
 public:
  FileTrace(const std::string& path, TraceFormat format, BadRecordPolicy policy,
            const ReaderLimits& limits)
      : path_(path), file_(path, std::ios::binary) {
    if (!file_)
      throw InputError(path, "trace", "cannot open: " + std::string(std::strerror(errno)));
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw InputError(path, "trace", "is a directory");
    inner_ = open_trace_stream(file_, path, format, policy, limits);
  }
  bool next(TraceRecord& r) override {
    const bool more = inner_->next(r);
    if (file_.bad()) throw InputError(path_, "trace", "read error");
    return more;
  }
  TraceFormat format() const override { return inner_->format(); }
  int64_t skipped() const override { return inner_->skipped(); }
  int64_t bytes_read() const override { return inner_->bytes_read(); }

 private:
  std::string path_;
  std::ifstream file_;
  std::unique_ptr<TraceReader> inner_;
};
}  // namespace

std::unique_ptr<TraceReader> open_trace(const std::string& path, TraceFormat format,
                                        BadRecordPolicy policy, const ReaderLimits& limits) {
  return std::make_unique<FileTrace>(path, format, policy, limits);
}

}  // namespace kvscope
