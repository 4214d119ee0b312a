// Unicode support for the tokenizer: UTF-8 helpers over ICU's properties,
// normalizers and case mapping.
#include "runtime/tokenizer/Unicode.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

namespace weft::tokenizer {

void appendUtf8(std::string &out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// The length of the valid UTF-8 sequence at s[i], or 0 when ill-formed;
/// `maximal` gets the length of the maximal invalid subpart otherwise.
static size_t validSequence(std::string_view s, size_t i, size_t &maximal) {
  auto byte = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100;
  };
  unsigned c = byte(0);
  maximal = 1;
  if (c < 0x80)
    return 1;
  unsigned lo = 0x80, hi = 0xBF;
  size_t len;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else
    return 0;
  for (size_t k = 1; k < len; ++k) {
    unsigned b = byte(k);
    unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      maximal = k;
      return 0;
    }
  }
  return len;
}

bool isValidUtf8(std::string_view s) {
  size_t maximal;
  for (size_t i = 0; i < s.size();) {
    size_t n = validSequence(s, i, maximal);
    if (!n)
      return false;
    i += n;
  }
  return true;
}

std::string utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t maximal;
  for (size_t i = 0; i < s.size();) {
    size_t n = validSequence(s, i, maximal);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += maximal;
    }
  }
  return out;
}

bool isWhitespace(char32_t c) {
  if (c < 0x80)
    return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_isUWhiteSpace(static_cast<UChar32>(c));
}

bool isNumeric(char32_t c) {
  int8_t t = u_charType(static_cast<UChar32>(c));
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER ||
         t == U_OTHER_NUMBER;
}

bool isAlphanumeric(char32_t c) {
  if (c < 0x80)
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  return u_isUAlphabetic(static_cast<UChar32>(c)) || isNumeric(c);
}

bool isPunctuation(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0;
}

bool isOther(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_C_MASK) != 0;
}

bool isMark(char32_t c) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_M_MASK) != 0;
}

bool isNonspacingMark(char32_t c) {
  return u_charType(static_cast<UChar32>(c)) == U_NON_SPACING_MARK;
}

std::string normalize(std::string_view s, NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2 *n = nullptr;
  switch (form) {
  case NormalForm::NFC:
    n = icu::Normalizer2::getNFCInstance(status);
    break;
  case NormalForm::NFD:
    n = icu::Normalizer2::getNFDInstance(status);
    break;
  case NormalForm::NFKC:
    n = icu::Normalizer2::getNFKCInstance(status);
    break;
  case NormalForm::NFKD:
    n = icu::Normalizer2::getNFKDInstance(status);
    break;
  }
  if (U_FAILURE(status))
    return std::string(s);
  // Most text is already normalized; ICU answers that without converting.
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  if (n->isNormalized(u, status) && U_SUCCESS(status))
    return std::string(s);
  status = U_ZERO_ERROR;
  icu::UnicodeString out = n->normalize(u, status);
  std::string result;
  out.toUTF8String(result);
  return result;
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char b = s[i];
    if (b < 0x80) {
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
      ++i;
      continue;
    }
    char32_t c = nextCodePoint(s, i);
    // The full (one-to-many) mapping of a lone code point: no final-sigma
    // or locale context, as Rust's char::to_lowercase.
    icu::UnicodeString u(static_cast<UChar32>(c));
    u.toLower(icu::Locale::getRoot());
    u.toUTF8String(out);
  }
  return out;
}

} // namespace weft::tokenizer
