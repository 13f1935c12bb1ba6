#include <gtest/gtest.h>

#include <sstream>
#include <streambuf>

#include "model/error.h"
#include "sim/trace/line_reader.h"
#include "sim/trace/trace.h"

using namespace kvscope;

namespace {

std::vector<TraceRecord> read_all(const std::string& text,
                                  TraceFormat format = TraceFormat::automatic,
                                  BadRecordPolicy policy = BadRecordPolicy::stop,
                                  int64_t* skipped = nullptr, TraceFormat* detected = nullptr,
                                  const ReaderLimits& limits = {}) {
  std::istringstream in(text);
  auto reader = open_trace_stream(in, "t.trace", format, policy, limits);
  std::vector<TraceRecord> out;
  TraceRecord r;
  while (reader->next(r)) out.push_back(r);
  if (skipped) *skipped = reader->skipped();
  if (detected) *detected = reader->format();
  return out;
}

// The InputError a text raises under the stop policy.
InputError error_of(const std::string& text, TraceFormat format = TraceFormat::automatic,
                    const ReaderLimits& limits = {}) {
  try {
    read_all(text, format, BadRecordPolicy::stop, nullptr, nullptr, limits);
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "no InputError for:\n" << text.substr(0, 200);
  return InputError("", "", "");
}

const char* kMooncake =
    "{\"timestamp\": 0, \"input_length\": 6758, \"output_length\": 500, \"hash_ids\": [0, 1, 2]}\n"
    "\n"
    "{\"timestamp\": 1500, \"input_length\": 700, \"output_length\": 3, \"hash_ids\": [0, 9]}\r\n"
    "{\"timestamp\": 1500.5, \"input_length\": 1, \"output_length\": 0, \"hash_ids\": []}";

}  // namespace

TEST(TraceReaders, MooncakeRecordsAreReadWithTheirLines) {
  TraceFormat f;
  const auto rs = read_all(kMooncake, TraceFormat::automatic, BadRecordPolicy::stop, nullptr, &f);
  EXPECT_EQ(f, TraceFormat::mooncake);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].line, 1);
  EXPECT_EQ(rs[0].input_tokens, 6758);
  EXPECT_EQ(rs[0].output_tokens, 500);
  EXPECT_EQ(rs[0].hash_ids, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(rs[1].line, 3);  // the blank line counts as a line
  EXPECT_DOUBLE_EQ(rs[1].timestamp_ms, 1500);
  EXPECT_EQ(rs[1].hash_ids, (std::vector<uint64_t>{0, 9}));
  EXPECT_EQ(rs[2].line, 4);  // last line without a newline
  EXPECT_DOUBLE_EQ(rs[2].timestamp_ms, 1500.5);
  EXPECT_TRUE(rs[2].hash_ids.empty());
  EXPECT_EQ(rs[2].output_tokens, 0);
}

TEST(TraceReaders, MooncakeIgnoresFieldsItDoesNotKnowButKvscopeRejectsThem) {
  const std::string line =
      "{\"timestamp\": 1, \"extra\": {\"a\": [1, {\"b\": null}]}, \"input_length\": 5, "
      "\"output_length\": 2}\n";
  const auto rs = read_all(line, TraceFormat::mooncake);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].input_tokens, 5);
  const InputError e = error_of(line, TraceFormat::kvscope);
  EXPECT_EQ(e.field(), "extra");
  EXPECT_NE(e.reason().find("unknown field"), std::string::npos);
}

TEST(TraceReaders, KvscopeJsonlCarriesBlockSizeSessionTokensAndContext) {
  const std::string text =
      "{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1, \"block_size\": 2, "
      "\"session\": \"conv-7\", \"tokens\": [5, 6, 7]}\n"
      "{\"timestamp\": 2, \"input_length\": 4, \"output_length\": 1, \"session\": 42, "
      "\"ctx\": [0.5, -1, 2e-3]}\n";
  TraceFormat f;
  const auto rs = read_all(text, TraceFormat::automatic, BadRecordPolicy::stop, nullptr, &f);
  EXPECT_EQ(f, TraceFormat::kvscope);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].block_size, 2);
  EXPECT_EQ(rs[0].session, "conv-7");
  EXPECT_EQ(rs[0].tokens, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(rs[1].session, "42");
  EXPECT_EQ(rs[1].block_size, 512);  // the default again: records do not leak into each other
  EXPECT_TRUE(rs[1].tokens.empty());
  ASSERT_EQ(rs[1].ctx.size(), 3u);
  EXPECT_FLOAT_EQ(rs[1].ctx[2], 0.002f);
}

TEST(TraceReaders, AzureCsvTimestampsBecomeMillisecondsSinceTheFirstRecord) {
  const std::string text =
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:15:46.6805900,4808,10\n"
      "2023-11-16 18:15:47.0000000,3180,8\r\n"
      "2023-11-17 18:15:46.6805900,110,27\n"
      "2024-03-01T00:00:00Z,1,1\n";
  TraceFormat f;
  const auto rs = read_all(text, TraceFormat::automatic, BadRecordPolicy::stop, nullptr, &f);
  EXPECT_EQ(f, TraceFormat::azure);
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[0].line, 2);
  EXPECT_DOUBLE_EQ(rs[0].timestamp_ms, 0.0);
  EXPECT_NEAR(rs[1].timestamp_ms, 319.41, 1e-9);
  EXPECT_DOUBLE_EQ(rs[2].timestamp_ms, 86400e3);
  // 2023-11-16 to 2024-03-01 is 30 + 31 + 31 + 14 = 106 days (2024 is a leap year)
  EXPECT_NEAR(rs[3].timestamp_ms, (106 * 86400.0 - (18 * 3600 + 15 * 60 + 46.68059)) * 1e3, 1e-5);
  EXPECT_EQ(rs[0].input_tokens, 4808);
  EXPECT_EQ(rs[0].output_tokens, 10);
  EXPECT_TRUE(rs[0].hash_ids.empty());
}

TEST(TraceReaders, UnknownFormatAndEmptyFilesAreErrors) {
  EXPECT_EQ(error_of("hello,world\n1,2\n").field(), "format");
  for (const char* empty : {"", "\n\n  \n"}) {
    const InputError e = error_of(empty);
    EXPECT_EQ(e.source(), "t.trace");
    EXPECT_NE(e.reason().find("empty"), std::string::npos) << e.what();
    EXPECT_NE(std::string(error_of(empty, TraceFormat::mooncake).what()).find("empty"),
              std::string::npos);
  }
  EXPECT_NE(error_of("TIMESTAMP,ContextTokens,GeneratedTokens\n").reason().find("no records"),
            std::string::npos);
}

struct BadCase {
  const char* name;
  TraceFormat format;
  std::string text;  // line 2 is the bad one
  const char* field;
  const char* says;
  int line = 0;  // the bad line; 0: line 2, after one good record (after the header for Azure)
};

class BadRecords : public ::testing::TestWithParam<BadCase> {};

const std::string kGoodJson = "{\"timestamp\": 10, \"input_length\": 100, \"output_length\": 5}\n";
const std::string kGoodAzure =
    "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,4808,10\n";

const BadCase kBadCases[] = {
    {"truncated", TraceFormat::mooncake, kGoodJson + "{\"timestamp\": 11, \"input_len", "record",
     "truncated"},
    {"truncated_array", TraceFormat::mooncake,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 5, \"output_length\": 1, \"hash_ids\": [1, 2",
     "hash_ids", "truncated"},
    {"string_length", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": \"100\", \"output_length\": 5}",
     "input_length", "got a string"},
    {"nan", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": NaN, \"input_length\": 100, \"output_length\": 5}", "timestamp",
     "malformed JSON"},
    {"negative_output", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 100, \"output_length\": -5}",
     "output_length", "negative"},
    {"zero_input", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 0, \"output_length\": 5}", "input_length",
     "at least 1"},
    {"absurd_input", TraceFormat::mooncake,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 99999999999999999999, \"output_length\": 5}",
     "input_length", "longer than"},
    {"fraction", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 10.5, \"output_length\": 5}",
     "input_length", "whole number"},
    {"unsorted", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 9, \"input_length\": 100, \"output_length\": 5}", "timestamp",
     "out of order"},
    {"negative_timestamp", TraceFormat::mooncake,
     "{\"timestamp\": -1, \"input_length\": 100, \"output_length\": 5}\n" + kGoodJson, "timestamp",
     "negative", 1},
    {"absurd_timestamp", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 1e300, \"input_length\": 100, \"output_length\": 5}", "timestamp",
     "beyond"},
    {"missing_field", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 100}", "output_length", "missing"},
    {"duplicate_key", TraceFormat::mooncake,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 1, \"input_length\": 2, \"output_length\": 5}",
     "input_length", "twice"},
    {"not_an_object", TraceFormat::mooncake, kGoodJson + "[1, 2, 3]", "record", "object"},
    {"trailing_garbage", TraceFormat::mooncake,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 100, \"output_length\": 5} x", "record",
     "malformed"},
    {"negative_hash", TraceFormat::mooncake,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 100, \"output_length\": 5, \"hash_ids\": [-1]}",
     "hash_ids", ">= 0"},
    {"hash_not_array", TraceFormat::mooncake,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 100, \"output_length\": 5, \"hash_ids\": 3}",
     "hash_ids", "array"},
    {"kv_tokens_mismatch", TraceFormat::kvscope,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 3, \"output_length\": 5, \"tokens\": [1, 2]}",
     "tokens", "input_length is 3"},
    {"kv_ctx_zero", TraceFormat::kvscope,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 3, \"output_length\": 5, \"ctx\": [0, 0]}",
     "ctx", "zeros"},
    {"kv_ctx_dims", TraceFormat::kvscope,
     "{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 5, \"ctx\": [1, 2]}\n"
     "{\"timestamp\": 2, \"input_length\": 3, \"output_length\": 5, \"ctx\": [1, 2, 3]}",
     "ctx", "earlier records have 2"},
    {"kv_block_size", TraceFormat::kvscope,
     kGoodJson +
         "{\"timestamp\": 11, \"input_length\": 3, \"output_length\": 5, \"block_size\": 0}",
     "block_size", "[1,"},
    {"kv_session_type", TraceFormat::kvscope,
     kGoodJson + "{\"timestamp\": 11, \"input_length\": 3, \"output_length\": 5, \"session\": [1]}",
     "session", "string"},
    {"azure_fields", TraceFormat::azure, kGoodAzure + "2023-11-16 18:15:47.0,12\n", "record",
     "3 comma-separated"},
    {"azure_datetime", TraceFormat::azure, kGoodAzure + "2023-13-16 18:15:47.0,12,5\n", "TIMESTAMP",
     "date and time"},
    {"azure_nan", TraceFormat::azure, kGoodAzure + "2023-11-16 18:15:47.0,nan,5\n", "ContextTokens",
     "whole number"},
    {"azure_negative", TraceFormat::azure, kGoodAzure + "2023-11-16 18:15:47.0,12,-5\n",
     "GeneratedTokens", "negative"},
    {"azure_unsorted", TraceFormat::azure, kGoodAzure + "2023-11-16 18:15:45.0,12,5\n", "TIMESTAMP",
     "out of order"},
    {"azure_absurd", TraceFormat::azure, kGoodAzure + "2023-11-16 18:15:47.0,123456789012,5\n",
     "ContextTokens", "longer than"},
};

TEST_P(BadRecords, StopNamesFileLineAndField) {
  const BadCase& c = GetParam();
  const InputError e = error_of(c.text, c.format);
  EXPECT_EQ(e.source(), "t.trace");
  EXPECT_EQ(e.line(), c.line ? c.line : c.format == TraceFormat::azure ? 3 : 2) << e.what();
  EXPECT_EQ(e.field(), c.field) << e.what();
  EXPECT_NE(e.reason().find(c.says), std::string::npos) << e.what();
  // The message a user sees carries all of it.
  EXPECT_NE(std::string(e.what()).find("t.trace:"), std::string::npos) << e.what();
}

TEST_P(BadRecords, SkipCountsTheRecordAndKeepsTheGoodOnes) {
  const BadCase& c = GetParam();
  int64_t skipped = 0;
  const auto rs = read_all(c.text, c.format, BadRecordPolicy::skip, &skipped);
  EXPECT_EQ(skipped, 1);
  EXPECT_EQ(rs.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Readers, BadRecords, ::testing::ValuesIn(kBadCases),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(TraceReaders, AllRecordsBadIsAnErrorEvenWhenSkipping) {
  try {
    read_all("{\"timestamp\": 1}\n{\"timestamp\": 2}\n", TraceFormat::mooncake,
             BadRecordPolicy::skip);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(e.reason().find("no good records (2 bad"), std::string::npos) << e.what();
    EXPECT_NE(e.reason().find(":1: input_length: missing"), std::string::npos) << e.what();
  }
}

TEST(TraceReaders, AHugeLineIsABadRecordThatCostsNoMoreThanTheLimit) {
  ReaderLimits limits;
  limits.max_line_bytes = 1000;
  const std::string huge =
      "{\"timestamp\": 11, \"input_length\": 100, \"output_length\": 5, "
      "\"hash_ids\": [" +
      std::string(100000, '1') + "]}\n";
  const std::string text =
      kGoodJson + huge + "{\"timestamp\": 12, \"input_length\": 7, \"output_length\": 5}\n";
  const InputError e = error_of(text, TraceFormat::mooncake, limits);
  EXPECT_EQ(e.line(), 2);
  EXPECT_EQ(e.field(), "line");
  EXPECT_NE(e.reason().find("longer than 1000 bytes"), std::string::npos);

  std::istringstream in(text);
  auto reader = open_trace_stream(in, "t", TraceFormat::mooncake, BadRecordPolicy::skip, limits);
  TraceRecord r;
  ASSERT_TRUE(reader->next(r));
  ASSERT_TRUE(reader->next(r));
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.input_tokens, 7);
  EXPECT_EQ(reader->skipped(), 1);
  EXPECT_FALSE(reader->next(r));
}

namespace {
// An endless-looking stream of Mooncake lines generated on the fly: nothing is held in memory.
class GeneratedTrace : public std::streambuf {
 public:
  explicit GeneratedTrace(int64_t lines) : left_(lines) {}

 protected:
  int_type underflow() override {
    if (left_ == 0) return traits_type::eof();
    --left_;
    line_ = "{\"timestamp\": " + std::to_string(t_++) +
            ", \"input_length\": 1000, \"output_length\": 10, \"hash_ids\": [0, 1, 2, 3]}\n";
    setg(line_.data(), line_.data(), line_.data() + line_.size());
    return traits_type::to_int_type(line_[0]);
  }

 private:
  int64_t left_;
  int64_t t_ = 0;
  std::string line_;
};
}  // namespace

TEST(TraceReaders, ReadersStreamInConstantMemory) {
  // The line buffer after 100,000 lines is what it was after the first chunk.
  GeneratedTrace gen(100000);
  std::istream in(&gen);
  LineReader lines(in, 4096);
  std::string_view line;
  ASSERT_EQ(lines.next(line), LineReader::Status::line);
  const size_t first = lines.buffer_bytes();
  int64_t n = 1;
  while (lines.next(line) == LineReader::Status::line) ++n;
  EXPECT_EQ(n, 100000);
  EXPECT_EQ(lines.buffer_bytes(), first);
  EXPECT_LE(first, size_t{1} << 20);

  GeneratedTrace gen2(20000);
  std::istream in2(&gen2);
  auto reader = open_trace_stream(in2, "gen", TraceFormat::mooncake, BadRecordPolicy::stop);
  TraceRecord r;
  int64_t records = 0;
  while (reader->next(r)) ++records;
  EXPECT_EQ(records, 20000);
  EXPECT_EQ(r.line, 20000);
}

TEST(TraceReaders, DetectionLooksAtTheFirstRecordOnly) {
  EXPECT_EQ(detect_trace_format("{\"timestamp\": 1}"), TraceFormat::mooncake);
  EXPECT_EQ(detect_trace_format("  {\"timestamp\": 1, \"ctx\": [1]}"), TraceFormat::kvscope);
  EXPECT_EQ(detect_trace_format("TIMESTAMP,ContextTokens,GeneratedTokens"), TraceFormat::azure);
  EXPECT_EQ(detect_trace_format("timestamp,input"), std::nullopt);
  EXPECT_EQ(parse_trace_format("auto"), TraceFormat::automatic);
  EXPECT_EQ(parse_trace_format("csv"), std::nullopt);
}

TEST(TraceReaders, MissingFileAndDirectoryAreErrors) {
  try {
    open_trace("/nonexistent/trace.jsonl", TraceFormat::automatic, BadRecordPolicy::stop);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), "/nonexistent/trace.jsonl");
    EXPECT_NE(e.reason().find("cannot open"), std::string::npos);
  }
  EXPECT_THROW(open_trace("/tmp", TraceFormat::automatic, BadRecordPolicy::stop), InputError);
}
