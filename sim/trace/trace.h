// Serving traces, read one record at a time.
//
// Three formats (DESIGN.md, "Trace formats read"):
//   mooncake  JSONL {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [..]}
//   azure     CSV   TIMESTAMP,ContextTokens,GeneratedTokens (TIMESTAMP "2023-11-16 18:15:46.68")
//   kvscope   JSONL the Mooncake fields plus optional block_size, session, tokens, ctx
// Readers stream: memory is bounded by the longest line (ReaderLimits), never by the trace
// length. A bad record is an InputError naming file, line, field and reason, or, under
// BadRecordPolicy::skip, is counted and passed over.
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvscope {

enum class TraceFormat { automatic, mooncake, azure, kvscope };
enum class BadRecordPolicy { stop, skip };  // stop: the first bad record is an InputError

// The formats read: the one list the CLI's help and errors, the GUI's format menu and the
// reports take their names and descriptions from.
struct TraceFormatInfo {
  TraceFormat format;
  std::string_view name;         // as --format and sessions spell it
  std::string_view description;  // the file it reads, in words
};
inline constexpr TraceFormatInfo kTraceFormats[] = {
    {TraceFormat::mooncake, "mooncake", "Mooncake JSONL"},
    {TraceFormat::azure, "azure", "Azure LLM inference CSV"},
    {TraceFormat::kvscope, "kvscope", "kvscope JSONL"},
};
// The name of detection from the content, which --format takes besides the formats' names.
inline constexpr std::string_view kAutomaticTraceFormatName = "auto";

std::string_view trace_format_name(TraceFormat f);  // auto | mooncake | azure | kvscope
std::optional<TraceFormat> parse_trace_format(std::string_view s);  // also "automatic"
// "Mooncake JSONL, Azure LLM inference CSV or kvscope JSONL"
std::string trace_format_descriptions();
// What --format accepts: "auto, mooncake, azure or kvscope"
std::string trace_format_choices();

// One request of a trace. Readers reuse a record's vectors between calls, so a caller that
// keeps one must copy what it needs.
struct TraceRecord {
  int64_t line = 0;         // 1-based line in the file
  double timestamp_ms = 0;  // as written in the trace (Azure: ms since the first record)
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t block_size = 512;        // tokens per hash_ids block (Mooncake's is 512)
  std::vector<uint64_t> hash_ids;  // prefix-block hashes; equal ids are equal blocks
  std::vector<int64_t> tokens;     // token ids of the input, when the trace has them
  std::vector<float> ctx;          // a context vector, when the trace has one
  std::string session;             // conversation id, when the trace has one
};

// Bounds that make a record "absurd" rather than merely large.
struct ReaderLimits {
  int64_t max_line_bytes = int64_t{64} << 20;  // longer lines are bad records
  int64_t max_tokens = int64_t{1} << 24;       // input/output_length above this are bad
  double max_timestamp_ms = 1e13;              // ~317 years
  int64_t max_ctx_dims = int64_t{1} << 16;
};

class TraceReader {
 public:
  virtual ~TraceReader() = default;
  // Reads the next good record into `r`; false at the end of the trace. Throws InputError for a
  // bad record under BadRecordPolicy::stop, and for an unreadable or record-less trace.
  virtual bool next(TraceRecord& r) = 0;
  virtual TraceFormat format() const = 0;
  virtual int64_t skipped() const = 0;     // bad records passed over (BadRecordPolicy::skip)
  virtual int64_t bytes_read() const = 0;  // progress through the input
};

// Opens `path`, detecting the format from its first non-blank line unless `format` says.
std::unique_ptr<TraceReader> open_trace(const std::string& path, TraceFormat format,
                                        BadRecordPolicy policy, const ReaderLimits& limits = {});

// The same over an already open stream (tests, fuzzers); `source` names it in errors. The stream
// must outlive the reader.
std::unique_ptr<TraceReader> open_trace_stream(std::istream& in, const std::string& source,
                                               TraceFormat format, BadRecordPolicy policy,
                                               const ReaderLimits& limits = {});

// Which format a trace is, from its first non-blank line: a JSON object is kvscope when it
// carries one of kvscope's own fields (block_size, session, tokens, ctx), else mooncake; the
// Azure CSV header is azure. nullopt when it is none of these.
std::optional<TraceFormat> detect_trace_format(std::string_view first_line);

}  // namespace kvscope
