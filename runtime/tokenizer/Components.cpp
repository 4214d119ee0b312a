// What the component builders share: typed JSON field access with paths in
// errors, and the byte-level character table.
#include "runtime/tokenizer/Components.h"

#include "runtime/tokenizer/Unicode.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace weft::tokenizer {

using nlohmann::json;

namespace {
/// Rust's POW10 table: the correctly rounded literals 1e0..1e308.
const std::array<double, 309> &powersOfTen() {
  static const std::array<double, 309> table = [] {
    std::array<double, 309> t;
    for (size_t i = 0; i < t.size(); ++i)
      t[i] = std::strtod(("1e" + std::to_string(i)).c_str(), nullptr);
    return t;
  }();
  return table;
}

/// serde_json's float parsing without its float_roundtrip feature: the
/// decimal significand as a u64 (digits past its range are dropped), then
/// one multiplication or division by a power of ten.
double serdeFloat(const std::string &lexeme) {
  size_t i = 0;
  bool positive = true;
  if (i < lexeme.size() && lexeme[i] == '-') {
    positive = false;
    ++i;
  }
  uint64_t significand = 0;
  int64_t exponent = 0;
  bool overflowed = false, afterPoint = false;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  for (; i < lexeme.size(); ++i) {
    char c = lexeme[i];
    if (c == '.') {
      afterPoint = true;
      continue;
    }
    if (c == 'e' || c == 'E')
      break;
    uint64_t digit = c - '0';
    if (!overflowed && significand >= max / 10 &&
        (significand > max / 10 || digit > max % 10)) {
      // An integer part this long is parsed another way; never in a
      // tokenizer.json score, so the nearest double does.
      if (!afterPoint)
        return std::strtod(lexeme.c_str(), nullptr);
      overflowed = true;
    }
    if (overflowed)
      continue;
    significand = significand * 10 + digit;
    if (afterPoint)
      --exponent;
  }
  if (i < lexeme.size()) {
    ++i;
    bool negExp = false;
    if (lexeme[i] == '+' || lexeme[i] == '-')
      negExp = lexeme[i++] == '-';
    int64_t e = 0;
    for (; i < lexeme.size() && e < 100000; ++i)
      e = e * 10 + (lexeme[i] - '0');
    exponent += negExp ? -e : e;
  }
  double f = static_cast<double>(significand);
  while (true) {
    uint64_t a = exponent < 0 ? uint64_t(-exponent) : uint64_t(exponent);
    if (a <= 308) {
      double pow = powersOfTen()[a];
      if (exponent >= 0)
        f *= pow;
      else
        f /= pow;
      break;
    }
    if (f == 0.0 || exponent >= 0)
      break;
    f /= 1e308;
    exponent += 308;
  }
  return positive ? f : -f;
}

/// nlohmann's DOM builder with serde_json's float rounding.
struct SerdeFloatSax : nlohmann::detail::json_sax_dom_parser<json> {
  using json_sax_dom_parser::json_sax_dom_parser;
  bool number_float(double, const std::string &lexeme) {
    return json_sax_dom_parser::number_float(serdeFloat(lexeme), lexeme);
  }
};
} // namespace

json parseTokenizerJson(std::string_view text) {
  json result;
  SerdeFloatSax sax(result, false);
  if (!json::sax_parse(text, &sax, nlohmann::detail::input_format_t::json, true,
                       false) ||
      sax.is_errored())
    return json(json::value_t::discarded);
  return result;
}

void configError(const std::string &path, const std::string &msg) {
  throw ConfigError(path + ": " + msg);
}

const json *field(const json &obj, const char *key) {
  if (!obj.is_object())
    return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string getString(const json &obj, const char *key, const std::string &path,
                      std::optional<std::string> fallback) {
  const json *v = field(obj, key);
  if (!v) {
    if (fallback)
      return *fallback;
    configError(path + "." + key, "missing");
  }
  if (!v->is_string())
    configError(path + "." + key, "expected a string");
  return v->get<std::string>();
}

bool getBool(const json &obj, const char *key, const std::string &path,
             std::optional<bool> fallback) {
  const json *v = field(obj, key);
  if (!v) {
    if (fallback)
      return *fallback;
    configError(path + "." + key, "missing");
  }
  if (!v->is_boolean())
    configError(path + "." + key, "expected a boolean");
  return v->get<bool>();
}

int64_t getInt(const json &obj, const char *key, const std::string &path,
               std::optional<int64_t> fallback) {
  const json *v = field(obj, key);
  if (!v) {
    if (fallback)
      return *fallback;
    configError(path + "." + key, "missing");
  }
  if (!v->is_number_integer())
    configError(path + "." + key, "expected an integer");
  return v->get<int64_t>();
}

std::shared_ptr<Regex> getPattern(const json &obj, const char *key,
                                  const std::string &path) {
  std::string p = path + "." + key;
  const json *v = field(obj, key);
  if (!v || !v->is_object())
    configError(p, "expected {\"String\": ...} or {\"Regex\": ...}");
  std::string source;
  if (const json *s = field(*v, "String"); s && s->is_string())
    source = Regex::escape(s->get<std::string>());
  else if (const json *r = field(*v, "Regex"); r && r->is_string())
    source = r->get<std::string>();
  else
    configError(p, "expected {\"String\": ...} or {\"Regex\": ...}");
  auto re = Regex::compile(source);
  if (!re.ok())
    configError(p, re.message());
  return *re;
}

namespace {
struct ByteLevelTable {
  std::array<std::string, 256> chars;
  std::array<int, 512> bytes;
  ByteLevelTable() {
    bytes.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? b : next++;
      appendUtf8(chars[b], c);
      bytes[c] = b;
    }
  }
};
const ByteLevelTable &table() {
  static const ByteLevelTable t;
  return t;
}
} // namespace

const std::string &byteLevelChar(uint8_t byte) { return table().chars[byte]; }

int byteLevelByte(char32_t c) { return c < 512 ? table().bytes[c] : -1; }

} // namespace weft::tokenizer

namespace weft::tokenizer {
std::unique_ptr<Model> buildBpe(const json &j, const std::string &path);
std::unique_ptr<Model> buildWordPiece(const json &j, const std::string &path);
std::unique_ptr<Model> buildUnigram(const json &j, const std::string &path);

std::unique_ptr<Model> buildModel(const json &j, const std::string &path) {
  // Older files leave out the model's type; its fields tell it.
  std::string type;
  if (field(j, "type"))
    type = getString(j, "type", path);
  else if (field(j, "merges"))
    type = "BPE";
  else if (field(j, "vocab") && j["vocab"].is_array())
    type = "Unigram";
  else
    type = "WordPiece";
  if (type == "BPE")
    return buildBpe(j, path);
  if (type == "WordPiece")
    return buildWordPiece(j, path);
  if (type == "Unigram")
    return buildUnigram(j, path);
  configError(path + ".type", "unsupported '" + type + "'");
}
} // namespace weft::tokenizer
