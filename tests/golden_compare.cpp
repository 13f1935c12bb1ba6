// kvscope-golden-compare EXPECTED ACTUAL: whether a file kvscope wrote holds the figures recorded
// in tests/golden/ (tests/golden/golden.sh runs it). Both files are read as text cut into number
// and non-number runs: non-number text must be equal, integers (no '.', no exponent) equal, and
// other numbers within 1e-12 of each other relative to the larger. The tolerance lets a build
// with other optimisation flags round a last digit differently, not a figure move. Prints the
// first differences (file, line, expected, actual) and exits 1 when there are any, 2 when a file
// cannot be read.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Token {
  std::string text;
  bool number = false;
  bool integer = false;
  int line = 1;
};

bool digit(char c) { return c >= '0' && c <= '9'; }

// A number: an optional '-', digits, an optional fraction, an optional exponent.
size_t number_length(const std::string& s, size_t i) {
  size_t j = i;
  if (j < s.size() && s[j] == '-') ++j;
  const size_t digits_from = j;
  while (j < s.size() && digit(s[j])) ++j;
  if (j == digits_from) return 0;
  if (j + 1 < s.size() && s[j] == '.' && digit(s[j + 1])) {
    ++j;
    while (j < s.size() && digit(s[j])) ++j;
  }
  if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
    size_t k = j + 1;
    if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
    if (k < s.size() && digit(s[k])) {
      while (k < s.size() && digit(s[k])) ++k;
      j = k;
    }
  }
  return j - i;
}

// A number starts at a digit or a '-' before one, unless it continues a name ("h200",
// "llama-3.1-8b": the digits after a letter, digit, '_' or '.' stay text).
bool starts_number(const std::string& s, size_t i) {
  if (i > 0) {
    const unsigned char p = static_cast<unsigned char>(s[i - 1]);
    if (std::isalnum(p) || p == '_' || p == '.') return false;
  }
  return digit(s[i]) || (s[i] == '-' && i + 1 < s.size() && digit(s[i + 1]));
}

std::vector<Token> tokens_of(const std::string& s) {
  std::vector<Token> out;
  int line = 1;
  size_t i = 0;
  while (i < s.size()) {
    if (starts_number(s, i)) {
      Token t;
      t.text = s.substr(i, number_length(s, i));
      t.number = true;
      t.integer = t.text.find_first_of(".eE") == std::string::npos;
      t.line = line;
      i += t.text.size();
      out.push_back(std::move(t));
      continue;
    }
    if (out.empty() || out.back().number) out.push_back(Token{"", false, false, line});
    out.back().text += s[i];
    if (s[i] == '\n') ++line;
    ++i;
  }
  return out;
}

bool read(const char* path, std::string& text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  text = s.str();
  return true;
}

bool same(const Token& a, const Token& b) {
  if (a.number != b.number) return false;
  if (!a.number || a.integer || b.integer) return a.text == b.text;
  const double x = std::strtod(a.text.c_str(), nullptr), y = std::strtod(b.text.c_str(), nullptr);
  return x == y || std::abs(x - y) <= 1e-12 * std::max(std::abs(x), std::abs(y));
}

std::string shown(const Token& t) {
  std::string s = t.text.size() > 60 ? t.text.substr(0, 60) + "..." : t.text;
  std::replace(s.begin(), s.end(), '\n', ' ');
  return "'" + s + "'";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: kvscope-golden-compare EXPECTED ACTUAL\n";
    return 2;
  }
  std::string want_text, got_text;
  for (int i : {1, 2}) {
    if (!read(argv[i], i == 1 ? want_text : got_text)) {
      std::cerr << argv[i] << ": cannot read\n";
      return 2;
    }
  }
  const auto want = tokens_of(want_text), got = tokens_of(got_text);
  int shown_diffs = 0;
  const size_t n = std::min(want.size(), got.size());
  for (size_t i = 0; i < n && shown_diffs < 5; ++i) {
    if (same(want[i], got[i])) continue;
    std::cerr << argv[2] << ":" << got[i].line << ": expected " << shown(want[i]) << " (line "
              << want[i].line << " of " << argv[1] << "), got " << shown(got[i]) << "\n";
    ++shown_diffs;
  }
  if (shown_diffs == 0 && want.size() != got.size()) {
    std::cerr << argv[2] << ": " << (got.size() < want.size() ? "ends early" : "goes on")
              << " against " << argv[1] << "\n";
    ++shown_diffs;
  }
  return shown_diffs == 0 ? 0 : 1;
}
