// What every line-based trace reader shares: the bad-record policy, the checks every record
// must pass whatever its format, and the error messages. Internal to sim/trace/.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "model/error.h"
#include "sim/trace/line_reader.h"
#include "sim/trace/trace.h"

namespace kvscope {

// A bad field of the current line; RecordReader adds the file and line.
struct BadField {
  std::string field;
  std::string reason;
};

class RecordReader : public TraceReader {
 public:
  // How the format spells the fields every record has, for error messages.
  struct FieldNames {
    const char* timestamp;
    const char* input;
    const char* output;
  };
  RecordReader(std::istream& in, std::string source, BadRecordPolicy policy,
               const ReaderLimits& limits, FieldNames names);

  bool next(TraceRecord& r) final;
  int64_t skipped() const final { return skipped_; }
  int64_t bytes_read() const final { return lines_.bytes_consumed(); }
  LineReader& lines() { return lines_; }

 protected:
  // Parses one non-blank line into `r` (whose vectors hold the previous record's data); throws
  // BadField for anything wrong with it.
  virtual void parse(std::string_view line, TraceRecord& r) = 0;
  // The first non-blank line, when the format has a header; true if it was one.
  virtual bool header(std::string_view /*line*/) { return false; }

  const std::string& source() const { return source_; }
  const ReaderLimits& limits() const { return limits_; }

 private:
  void check_common(const TraceRecord& r);  // throws BadField
  [[noreturn]] void fail(const std::string& field, const std::string& reason) const;

  LineReader lines_;
  std::string source_;
  FieldNames names_;
  BadRecordPolicy policy_;
  ReaderLimits limits_;
  int64_t records_ = 0, skipped_ = 0, nonblank_ = 0;
  double prev_timestamp_ms_ = 0;
  int64_t prev_line_ = 0;
  std::string first_error_;  // kept for the "no good records" message under skip
};

std::unique_ptr<RecordReader> make_jsonl_reader(std::istream& in, const std::string& source,
                                                TraceFormat format, BadRecordPolicy policy,
                                                const ReaderLimits& limits);
std::unique_ptr<RecordReader> make_azure_reader(std::istream& in, const std::string& source,
                                                BadRecordPolicy policy, const ReaderLimits& limits);

}  // namespace kvscope
