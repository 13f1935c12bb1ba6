// Mooncake and kvscope JSONL. Each line is parsed with nlohmann's SAX interface straight into
// the reused TraceRecord: no DOM per line, and every value is checked as it arrives, so a bad
// one is reported with the field it belongs to.
#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sim/trace/record_reader.h"

namespace kvscope {

namespace {

enum Field : int {
  kTimestamp,
  kInput,
  kOutput,
  kHashIds,
  kBlockSize,
  kSession,
  kTokens,
  kCtx,
  kFieldCount,
  kUnknown = kFieldCount,
};

constexpr const char* kFieldNames[kFieldCount] = {"timestamp", "input_length", "output_length",
                                                  "hash_ids",  "block_size",   "session",
                                                  "tokens",    "ctx"};

constexpr int64_t kMaxBlockSize = int64_t{1} << 20;

// A JSON number as the lexer gave it.
struct Number {
  enum Kind { negative, unsigned_int, floating } kind;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;

  // As a whole number; nullopt for a fraction. Out-of-range wholes saturate (range checks later
  // then call them too long rather than wrapping them).
  std::optional<int64_t> whole() const {
    constexpr auto kMax = std::numeric_limits<int64_t>::max();
    switch (kind) {
      case negative:
        return i;
      case unsigned_int:
        return u > static_cast<uint64_t>(kMax) ? kMax : static_cast<int64_t>(u);
      case floating:
        if (!std::isfinite(d) || d != std::floor(d)) return std::nullopt;
        if (d >= 9.2e18) return kMax;
        if (d <= -9.2e18) return std::numeric_limits<int64_t>::min();
        return static_cast<int64_t>(d);
    }
    return std::nullopt;
  }
  double real() const {
    return kind == negative       ? static_cast<double>(i)
           : kind == unsigned_int ? static_cast<double>(u)
                                  : d;
  }
};

class RecordSax final : public nlohmann::json_sax<nlohmann::json> {
 public:
  RecordSax(TraceRecord& r, bool kvscope_fields, const ReaderLimits& limits, size_t line_bytes)
      : r_(r), kvscope_fields_(kvscope_fields), limits_(limits), line_bytes_(line_bytes) {}

  std::optional<BadField> error;
  unsigned seen = 0;  // bit per Field
  bool complete = false;

  bool null() override { return ended(), value_of_type("null"); }
  bool boolean(bool) override { return ended(), value_of_type("a boolean"); }
  bool number_integer(number_integer_t v) override {
    return number(
        Number{v < 0 ? Number::negative : Number::unsigned_int, v, static_cast<uint64_t>(v), 0});
  }
  bool number_unsigned(number_unsigned_t v) override {
    return number(Number{Number::unsigned_int, 0, v, 0});
  }
  bool number_float(number_float_t v, const string_t&) override {
    return number(Number{Number::floating, 0, 0, v});
  }
  bool string(string_t& s) override {
    if (skipping()) return true;
    ended();
    if (depth_ == 1 && field_ == kSession) {
      r_.session = std::move(s);
      return true;
    }
    return value_of_type("a string");
  }
  bool binary(binary_t&) override { return ended(), value_of_type("binary data"); }

  bool start_object(std::size_t) override {
    if (skipping()) return ++skip_depth_, true;
    if (depth_ == 0) return depth_ = 1, true;
    if (depth_ == 1 && field_ == kUnknown) return skip_depth_ = 1, true;
    return value_of_type("an object");
  }
  bool end_object() override {
    if (skipping()) return end_skipped();
    depth_ = 0;
    complete = true;
    return true;
  }
  bool start_array(std::size_t) override {
    if (skipping()) return ++skip_depth_, true;
    if (depth_ == 0) return fail("record", "expected a JSON object, got an array");
    if (depth_ == 1) {
      if (field_ == kUnknown) return skip_depth_ = 1, true;
      if (field_ == kHashIds || field_ == kTokens || field_ == kCtx) return depth_ = 2, true;
    }
    return value_of_type("an array");
  }
  bool end_array() override {
    if (skipping()) return end_skipped();
    depth_ = 1;
    awaiting_value_ = false;
    return true;
  }
  bool key(string_t& k) override {
    if (skipping()) return true;
    field_ = kUnknown;
    awaiting_value_ = true;
    const int known = kvscope_fields_ ? kFieldCount : kBlockSize;  // Mooncake's four come first
    for (int f = 0; f < known; ++f)
      if (k == kFieldNames[f]) field_ = static_cast<Field>(f);
    if (field_ == kUnknown) {
      if (kvscope_fields_)
        return fail(k,
                    "unknown field (kvscope JSONL has timestamp, input_length, output_length, "
                    "hash_ids, block_size, session, tokens, ctx)");
      return true;  // Mooncake variants carry extra fields; only the four are read
    }
    if (seen & (1u << field_)) return fail(k, "appears twice in the record");
    seen |= 1u << field_;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    if (error) return false;  // our own rejection surfaces as a parse error too
    std::string what = ex.what();
    const size_t close = what.find("] ");
    if (close != std::string::npos) what.erase(0, close + 2);
    // Running into the end of the line inside the record means the line was cut, whatever the
    // lexer was expecting there.
    const bool truncated = (position >= line_bytes_ && depth_ > 0) ||
                           what.find("unexpected end of input") != std::string::npos;
    return fail(awaiting_value_ && field_ != kUnknown ? kFieldNames[field_] : "record",
                std::string(truncated ? "truncated record: " : "malformed JSON: ") + what);
  }

 private:
  bool skipping() const { return skip_depth_ > 0; }
  bool end_skipped() {
    if (--skip_depth_ == 0) awaiting_value_ = false;
    return true;
  }
  // A scalar ended; at depth 1 that is the whole value of the current key.
  void ended() {
    if (depth_ == 1 && !skipping()) awaiting_value_ = false;
  }

  bool fail(const std::string& field, const std::string& reason) {
    if (!error) error = BadField{field, reason};
    return false;
  }
  const char* name() const { return field_ == kUnknown ? "record" : kFieldNames[field_]; }

  bool value_of_type(const char* what) {
    if (skipping() || (depth_ == 1 && field_ == kUnknown)) return true;
    if (depth_ == 0) return fail("record", std::string("expected a JSON object, got ") + what);
    return fail(name(), std::string("expected ") + expected() + ", got " + what);
  }
  const char* expected() const {
    switch (field_) {
      case kTimestamp:
        return "a number of milliseconds";
      case kInput:
      case kOutput:
        return "a whole number of tokens";
      case kBlockSize:
        return "a whole number of tokens per block";
      case kSession:
        return "a string or a whole number";
      case kHashIds:
        return depth_ == 2 ? "a whole number (a block hash)" : "an array of block hashes";
      case kTokens:
        return depth_ == 2 ? "a whole number (a token id)" : "an array of token ids";
      case kCtx:
        return depth_ == 2 ? "a number" : "an array of numbers";
      default:
        return "a value";
    }
  }

  bool number(const Number& n) {
    ended();
    if (skipping() || (depth_ == 1 && field_ == kUnknown)) return true;
    if (depth_ == 0) return fail("record", "expected a JSON object, got a number");
    const std::optional<int64_t> w = n.whole();
    if (depth_ == 1) {
      switch (field_) {
        case kTimestamp:
          r_.timestamp_ms = n.real();
          return true;
        case kInput:
        case kOutput:
          if (!w) return fail(name(), "expected a whole number of tokens, got " + fraction(n));
          (field_ == kInput ? r_.input_tokens : r_.output_tokens) = *w;
          return true;
        case kBlockSize:
          if (!w || *w < 1 || *w > kMaxBlockSize)
            return fail(name(), "must be a whole number of tokens in [1, " +
                                    std::to_string(kMaxBlockSize) + "]");
          r_.block_size = *w;
          return true;
        case kSession:
          if (!w) return fail(name(), "expected a string or a whole number");
          r_.session = std::to_string(*w);
          return true;
        default:
          return value_of_type("a number");
      }
    }
    // depth 2: an element of hash_ids, tokens or ctx
    switch (field_) {
      case kHashIds:
        if (!w || *w < 0) return fail(name(), "block hashes must be whole numbers >= 0");
        if (static_cast<int64_t>(r_.hash_ids.size()) >= limits_.max_tokens)
          return fail(name(), "more than " + std::to_string(limits_.max_tokens) + " blocks");
        r_.hash_ids.push_back(n.kind == Number::unsigned_int ? n.u : static_cast<uint64_t>(*w));
        return true;
      case kTokens:
        if (!w || *w < 0) return fail(name(), "token ids must be whole numbers >= 0");
        if (static_cast<int64_t>(r_.tokens.size()) >= limits_.max_tokens)
          return fail(name(), "more than " + std::to_string(limits_.max_tokens) + " tokens");
        r_.tokens.push_back(*w);
        return true;
      case kCtx: {
        const double v = n.real();
        if (!std::isfinite(v) ||
            std::abs(v) > static_cast<double>(std::numeric_limits<float>::max()))
          return fail(name(), "elements must be finite numbers within float range");
        if (static_cast<int64_t>(r_.ctx.size()) >= limits_.max_ctx_dims)
          return fail(name(), "more than " + std::to_string(limits_.max_ctx_dims) + " dimensions");
        r_.ctx.push_back(static_cast<float>(v));
        return true;
      }
      default:
        return value_of_type("a number");
    }
  }
  static std::string fraction(const Number& n) {
    std::ostringstream s;
    s.precision(17);
    s << n.real();
    return s.str();
  }

  TraceRecord& r_;
  bool kvscope_fields_;
  const ReaderLimits& limits_;
  size_t line_bytes_;
  int depth_ = 0;                // 1 inside the record, 2 inside one of its arrays
  int skip_depth_ = 0;           // > 0 while passing over an unknown field's nested value
  bool awaiting_value_ = false;  // a key was read and its value has not ended
  Field field_ = kUnknown;
};

class JsonlReader final : public RecordReader {
 public:
  JsonlReader(std::istream& in, const std::string& source, TraceFormat format,
              BadRecordPolicy policy, const ReaderLimits& limits)
      : RecordReader(in, source, policy, limits, {"timestamp", "input_length", "output_length"}),
        format_(format) {}
  TraceFormat format() const override { return format_; }

 protected:
  void parse(std::string_view line, TraceRecord& r) override {
    r.hash_ids.clear();
    r.tokens.clear();
    r.ctx.clear();
    r.session.clear();
    r.block_size = 512;
    RecordSax sax(r, format_ == TraceFormat::kvscope, limits(), line.size());
    const bool ok = nlohmann::json::sax_parse(line.begin(), line.end(), &sax,
                                              nlohmann::json::input_format_t::json, true);
    if (sax.error) throw *sax.error;
    if (!ok || !sax.complete) throw BadField{"record", "not a complete JSON object"};
    for (Field f : {kTimestamp, kInput, kOutput})
      if (!(sax.seen & (1u << f))) throw BadField{kFieldNames[f], "missing"};
    if (!r.tokens.empty() && static_cast<int64_t>(r.tokens.size()) != r.input_tokens)
      throw BadField{"tokens", std::to_string(r.tokens.size()) + " token ids but input_length is " +
                                   std::to_string(r.input_tokens)};
    if (!r.ctx.empty()) {
      bool any = false;
      for (float v : r.ctx) any = any || v != 0.0f;
      if (!any) throw BadField{"ctx", "all zeros: a context vector needs a direction"};
      // Contexts are compared with each other, so they must live in one space.
      if (ctx_dims_ != 0 && static_cast<int64_t>(r.ctx.size()) != ctx_dims_)
        throw BadField{"ctx", std::to_string(r.ctx.size()) +
                                  " dimensions, but earlier records have " +
                                  std::to_string(ctx_dims_)};
      ctx_dims_ = static_cast<int64_t>(r.ctx.size());
    }
  }

 private:
  TraceFormat format_;
  int64_t ctx_dims_ = 0;
};

}  // namespace

std::unique_ptr<RecordReader> make_jsonl_reader(std::istream& in, const std::string& source,
                                                TraceFormat format, BadRecordPolicy policy,
                                                const ReaderLimits& limits) {
  return std::make_unique<JsonlReader>(in, source, format, policy, limits);
}

}  // namespace kvscope
