// A small JSON parser for safetensors headers.
#include "runtime/support/Json.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace weft::runtime {

const JsonValue *JsonValue::find(std::string_view key) const {
  for (const auto &[k, v] : object)
    if (k == key)
      return &v;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class JsonParser {
public:
  explicit JsonParser(std::string_view text) : s(text) {}

  Result<JsonValue> parseDocument() {
    JsonValue v;
    if (Status st = parseValue(v, 0); !st.ok())
      return st;
    skipSpace();
    if (pos != s.size())
      return fail("trailing characters");
    return v;
  }

private:
  Status fail(const std::string &what) const {
    return errorStatus("invalid JSON at byte " + std::to_string(pos) + ": " +
                       what);
  }
  void skipSpace() {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' ||
                              s[pos] == '\n' || s[pos] == '\r'))
      ++pos;
  }
  bool eat(char c) {
    skipSpace();
    if (pos < s.size() && s[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  bool eatWord(std::string_view w) {
    if (s.substr(pos, w.size()) != w)
      return false;
    pos += w.size();
    return true;
  }

  Status parseValue(JsonValue &v, int depth) {
    if (depth > kMaxDepth)
      return fail("nested too deeply");
    skipSpace();
    if (pos >= s.size())
      return fail("unexpected end");
    char c = s[pos];
    if (c == '{')
      return parseObject(v, depth);
    if (c == '[')
      return parseArray(v, depth);
    if (c == '"') {
      v.kind = JsonValue::Kind::String;
      return parseString(v.string);
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c)))
      return parseNumber(v);
    return parseLiteral(v);
  }

  Status parseLiteral(JsonValue &v) {
    if (eatWord("null")) {
      v.kind = JsonValue::Kind::Null;
      return okStatus();
    }
    bool isTrue = eatWord("true");
    if (isTrue || eatWord("false")) {
      v.kind = JsonValue::Kind::Bool;
      v.boolean = isTrue;
      return okStatus();
    }
    return fail("unexpected character");
  }

  Status parseObject(JsonValue &v, int depth) {
    v.kind = JsonValue::Kind::Object;
    ++pos;
    if (eat('}'))
      return okStatus();
    do {
      skipSpace();
      std::string key;
      if (pos >= s.size() || s[pos] != '"')
        return fail("expected a member name");
      if (Status st = parseString(key); !st.ok())
        return st;
      if (!eat(':'))
        return fail("expected ':'");
      JsonValue member;
      if (Status st = parseValue(member, depth + 1); !st.ok())
        return st;
      v.object.push_back(JsonMember{std::move(key), std::move(member)});
    } while (eat(','));
    return eat('}') ? okStatus() : fail("expected ',' or '}'");
  }

  Status parseArray(JsonValue &v, int depth) {
    v.kind = JsonValue::Kind::Array;
    ++pos;
    if (eat(']'))
      return okStatus();
    do {
      JsonValue item;
      if (Status st = parseValue(item, depth + 1); !st.ok())
        return st;
      v.array.push_back(std::move(item));
    } while (eat(','));
    return eat(']') ? okStatus() : fail("expected ',' or ']'");
  }

  Status parseNumber(JsonValue &v) {
    size_t start = pos;
    if (s[pos] == '-')
      ++pos;
    bool integral = true;
    while (pos < s.size() &&
           (std::isdigit(static_cast<unsigned char>(s[pos])) || s[pos] == '.' ||
            s[pos] == 'e' || s[pos] == 'E' || s[pos] == '+' || s[pos] == '-')) {
      if (!std::isdigit(static_cast<unsigned char>(s[pos])))
        integral = false;
      ++pos;
    }
    std::string text(s.substr(start, pos - start));
    char *end = nullptr;
    v.kind = JsonValue::Kind::Number;
    v.number = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size())
      return fail("malformed number");
    if (integral) {
      errno = 0;
      v.integer = std::strtoll(text.c_str(), &end, 10);
      v.isInteger = errno == 0;
    }
    return okStatus();
  }

  Status parseString(std::string &out) {
    ++pos; // opening quote
    while (pos < s.size() && s[pos] != '"') {
      char c = s[pos++];
      if (static_cast<unsigned char>(c) < 0x20)
        return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (Status st = parseEscape(out); !st.ok())
        return st;
    }
    if (pos >= s.size())
      return fail("unterminated string");
    ++pos;
    return okStatus();
  }

  Status parseEscape(std::string &out) {
    if (pos >= s.size())
      return fail("unterminated escape");
    char c = s[pos++];
    switch (c) {
    case '"':
    case '\\':
    case '/':
      out += c;
      return okStatus();
    case 'b':
      out += '\b';
      return okStatus();
    case 'f':
      out += '\f';
      return okStatus();
    case 'n':
      out += '\n';
      return okStatus();
    case 'r':
      out += '\r';
      return okStatus();
    case 't':
      out += '\t';
      return okStatus();
    case 'u':
      return parseUnicode(out);
    default:
      return fail("bad escape");
    }
  }

  bool hex4(uint32_t &cp) {
    if (pos + 4 > s.size())
      return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s[pos++];
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
              : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
              : (c >= 'A' && c <= 'F')                    ? c - 'A' + 10
                                                          : -1;
      if (d < 0)
        return false;
      cp = cp * 16 + static_cast<uint32_t>(d);
    }
    return true;
  }

  Status parseUnicode(std::string &out) {
    uint32_t cp;
    if (!hex4(cp))
      return fail("bad \\u escape");
    if (cp >= 0xd800 && cp < 0xdc00) {
      uint32_t low;
      if (!eatWord("\\u") || !hex4(low) || low < 0xdc00 || low >= 0xe000)
        return fail("unpaired surrogate");
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    appendUtf8(out, cp);
    return okStatus();
  }

  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::string_view s;
  size_t pos = 0;
};

} // namespace

Result<JsonValue> parseJson(std::string_view text) {
  return JsonParser(text).parseDocument();
}

} // namespace weft::runtime
