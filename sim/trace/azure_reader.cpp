// Azure LLM inference trace CSV: a header TIMESTAMP,ContextTokens,GeneratedTokens, then one
// request per line, TIMESTAMP as "2023-11-16 18:15:46.6805900" (UTC, up to 100 ns resolution).
#include <cctype>
#include <charconv>
#include <chrono>
#include <limits>
#include <optional>

#include "sim/trace/record_reader.h"

namespace kvscope {

namespace {

std::string_view trim(std::string_view s) {
  const size_t a = s.find_first_not_of(" \t\"");
  if (a == std::string_view::npos) return {};
  const size_t b = s.find_last_not_of(" \t\"");
  return s.substr(a, b - a + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Up to three fields; more are reported by count.
int split3(std::string_view line, std::string_view out[3]) {
  int n = 0;
  size_t start = 0;
  for (;;) {
    const size_t comma = line.find(',', start);
    const std::string_view f =
        line.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (n < 3) out[n] = trim(f);
    ++n;
    if (comma == std::string_view::npos) return n;
    start = comma + 1;
  }
}

bool digits(std::string_view s, size_t pos, size_t count, int& out) {
  if (pos + count > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

struct Instant {
  int64_t seconds = 0;  // since the epoch; years 0..9999 fit easily
  int64_t nanos = 0;    // [0, 1e9)
};

// "YYYY-MM-DD HH:MM:SS[.fffffffff][Z]" (or a 'T' between date and time), UTC.
std::optional<Instant> parse_datetime(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (s.size() < 19 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != ' ' && s[10] != 'T') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int64_t scale = 100000000;
    const size_t first = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - first >= 9) return std::nullopt;  // finer than a nanosecond
      frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == first) return std::nullopt;
  }
  if (pos < s.size() && s[pos] == 'Z') ++pos;
  if (pos != s.size()) return std::nullopt;
  using namespace std::chrono;
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                            day{static_cast<unsigned>(d)}};
  if (!date.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  const int64_t days = sys_days{date}.time_since_epoch().count();
  return Instant{((days * 24 + h) * 60 + mi) * 60 + sec, frac_ns};
}

class AzureReader final : public RecordReader {
 public:
  AzureReader(std::istream& in, const std::string& source, BadRecordPolicy policy,
              const ReaderLimits& limits)
      : RecordReader(in, source, policy, limits,
                     {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}) {}
  TraceFormat format() const override { return TraceFormat::azure; }

 protected:
  bool header(std::string_view line) override {
    std::string_view f[3];
    const int n = split3(line, f);
    if (n == 3 && iequals(f[0], "TIMESTAMP") && iequals(f[1], "ContextTokens") &&
        iequals(f[2], "GeneratedTokens"))
      return true;
    throw BadField{"header", "expected TIMESTAMP,ContextTokens,GeneratedTokens, got '" +
                                 std::string(line.substr(0, 80)) + "'"};
  }

  void parse(std::string_view line, TraceRecord& r) override {
    std::string_view f[3];
    const int n = split3(line, f);
    if (n != 3)
      throw BadField{"record", "expected 3 comma-separated fields, got " + std::to_string(n)};
    const auto t = parse_datetime(f[0]);
    if (!t)
      throw BadField{"TIMESTAMP",
                     "expected a date and time like 2023-11-16 18:15:46.6805900, got '" +
                         std::string(f[0].substr(0, 40)) + "'"};
    if (!first_) first_ = *t;
    r.timestamp_ms = static_cast<double>(t->seconds - first_->seconds) * 1e3 +
                     static_cast<double>(t->nanos - first_->nanos) / 1e6;
    r.input_tokens = whole(f[1], "ContextTokens");
    r.output_tokens = whole(f[2], "GeneratedTokens");
    r.hash_ids.clear();
    r.tokens.clear();
    r.ctx.clear();
    r.session.clear();
    r.block_size = 512;
  }

 private:
  static int64_t whole(std::string_view s, const char* field) {
    int64_t v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || p != s.data() + s.size())
      throw BadField{
          field, "expected a whole number of tokens, got '" + std::string(s.substr(0, 40)) + "'"};
    if (ec == std::errc::result_out_of_range) return std::numeric_limits<int64_t>::max();
    return v;
  }

  std::optional<Instant> first_;  // the trace's time zero
};

}  // namespace

std::unique_ptr<RecordReader> make_azure_reader(std::istream& in, const std::string& source,
                                                BadRecordPolicy policy,
                                                const ReaderLimits& limits) {
  return std::make_unique<AzureReader>(in, source, policy, limits);
}

}  // namespace kvscope
