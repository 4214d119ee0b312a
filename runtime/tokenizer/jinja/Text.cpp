// UTF-8 text as Python's str sees it.
#include "runtime/tokenizer/jinja/Text.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace weft::tokenizer::jinja {

std::u32string decodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = text[i];
    int extra = c < 0x80         ? 0
                : (c >> 5) == 6  ? 1
                : (c >> 4) == 14 ? 2
                : (c >> 3) == 30 ? 3
                                 : -1;
    if (extra < 0 || i + extra >= text.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
    bool ok = true;
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = text[i + k];
      if ((cc >> 6) != 2) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += extra + 1;
  }
  return out;
}

void appendUtf8(std::string &out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string encodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text)
    appendUtf8(out, c);
  return out;
}

size_t codePointCount(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text)
    n += (c & 0xC0) != 0x80;
  return n;
}

bool isAscii(std::string_view text) {
  for (unsigned char c : text)
    if (c >= 0x80)
      return false;
  return true;
}

bool isPythonSpace(char32_t c) {
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20))
    return true;
  switch (c) {
  case 0x85:
  case 0xA0:
  case 0x1680:
  case 0x2028:
  case 0x2029:
  case 0x202F:
  case 0x205F:
  case 0x3000:
    return true;
  default:
    return c >= 0x2000 && c <= 0x200A;
  }
}

std::string pyStrip(std::string_view text,
                    const std::optional<std::string> &chars, bool left,
                    bool right) {
  std::u32string cps = decodeUtf8(text);
  std::u32string set = chars ? decodeUtf8(*chars) : std::u32string();
  auto strippable = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : isPythonSpace(c);
  };
  size_t begin = 0, end = cps.size();
  while (left && begin < end && strippable(cps[begin]))
    ++begin;
  while (right && end > begin && strippable(cps[end - 1]))
    --end;
  return encodeUtf8(std::u32string_view(cps).substr(begin, end - begin));
}

std::vector<std::string> pySplit(std::string_view text,
                                 const std::optional<std::string> &sep,
                                 long maxSplit) {
  std::vector<std::string> parts;
  if (sep) {
    size_t start = 0;
    while (maxSplit < 0 || static_cast<long>(parts.size()) < maxSplit) {
      size_t at = text.find(*sep, start);
      if (at == std::string_view::npos)
        break;
      parts.emplace_back(text.substr(start, at - start));
      start = at + sep->size();
    }
    parts.emplace_back(text.substr(start));
    return parts;
  }
  std::u32string cps = decodeUtf8(text);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && isPythonSpace(cps[i]))
      ++i;
    if (i == cps.size())
      break;
    if (maxSplit >= 0 && static_cast<long>(parts.size()) == maxSplit) {
      size_t end = cps.size();
      while (end > i && isPythonSpace(cps[end - 1]))
        --end;
      parts.push_back(encodeUtf8(std::u32string_view(cps).substr(i, end - i)));
      break;
    }
    size_t start = i;
    while (i < cps.size() && !isPythonSpace(cps[i]))
      ++i;
    parts.push_back(
        encodeUtf8(std::u32string_view(cps).substr(start, i - start)));
  }
  return parts;
}

static bool isLineBreak(char32_t c) {
  return (c >= 0x0A && c <= 0x0D) || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

std::vector<std::string> pySplitLines(std::string_view text) {
  std::u32string cps = decodeUtf8(text);
  std::vector<std::string> lines;
  size_t start = 0, i = 0;
  while (i < cps.size()) {
    if (!isLineBreak(cps[i])) {
      ++i;
      continue;
    }
    lines.push_back(
        encodeUtf8(std::u32string_view(cps).substr(start, i - start)));
    i += (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ? 2 : 1;
    start = i;
  }
  if (start < cps.size())
    lines.push_back(encodeUtf8(std::u32string_view(cps).substr(start)));
  return lines;
}

std::string pyReplace(std::string_view text, std::string_view from,
                      std::string_view to, long count) {
  std::string out;
  if (from.empty()) {
    // Python inserts `to` around every code point.
    std::u32string cps = decodeUtf8(text);
    long done = 0;
    for (char32_t c : cps) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      appendUtf8(out, c);
    }
    if (count < 0 || done < count)
      out += to;
    return out;
  }
  size_t start = 0;
  long done = 0;
  while (count < 0 || done < count) {
    size_t at = text.find(from, start);
    if (at == std::string_view::npos)
      break;
    out += text.substr(start, at - start);
    out += to;
    start = at + from.size();
    ++done;
  }
  out += text.substr(start);
  return out;
}

std::string pyFloatRepr(double value) {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value,
                           std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t ePos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, ePos))
    if (c != '.')
      digits += c;
  int exp10 = std::stoi(sci.substr(ePos + 1));
  int decpt = exp10 + 1;
  int n = static_cast<int>(digits.size());
  if (decpt <= -4 || decpt > 16) {
    std::string out = sign + digits.substr(0, 1);
    if (n > 1)
      out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof(e), "e%c%02d", exp10 < 0 ? '-' : '+',
                  exp10 < 0 ? -exp10 : exp10);
    return out + e;
  }
  if (decpt <= 0)
    return sign + "0." + std::string(-decpt, '0') + digits;
  if (decpt >= n)
    return sign + digits + std::string(decpt - n, '0') + ".0";
  return sign + digits.substr(0, decpt) + "." + digits.substr(decpt);
}

static bool isPrintable(char32_t c) {
  return !(c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD ||
           (c >= 0x2028 && c <= 0x2029) || (c >= 0xD800 && c <= 0xDFFF));
}

std::string pyStrRepr(std::string_view text) {
  bool hasSingle = text.find('\'') != std::string_view::npos;
  bool hasDouble = text.find('"') != std::string_view::npos;
  char quote = hasSingle && !hasDouble ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decodeUtf8(text)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!isPrintable(c)) {
      char buf[16];
      if (c < 0x100)
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      else
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      appendUtf8(out, c);
    }
  }
  out += quote;
  return out;
}

} // namespace weft::tokenizer::jinja
