// UTF-8 stepping and the Unicode properties and transforms the tokenizer
// needs (categories, normalization forms, lowercase), backed by ICU.
#ifndef WEFT_RUNTIME_TOKENIZER_UNICODE_H
#define WEFT_RUNTIME_TOKENIZER_UNICODE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace weft::tokenizer {

/// Decodes the code point at `s[i]` and advances `i` past it. The input is
/// valid UTF-8 (checked once on entry to the tokenizer).
inline char32_t nextCodePoint(std::string_view s, size_t &i) {
  unsigned char c = s[i];
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (0x3F >> (len - 1));
  for (int k = 1; k < len; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

/// The byte length of the UTF-8 sequence starting with `lead`.
inline size_t utf8Length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
}

void appendUtf8(std::string &out, char32_t cp);

/// Whether `s` is well-formed UTF-8.
bool isValidUtf8(std::string_view s);
/// `s` with every ill-formed sequence replaced by U+FFFD, as Rust's
/// String::from_utf8_lossy does (one per maximal invalid subpart).
std::string utf8Lossy(std::string_view s);

// Properties with the meaning of Rust's char methods, which the Hugging Face
// tokenizers library uses.
bool isWhitespace(char32_t c);   // char::is_whitespace (White_Space)
bool isAlphanumeric(char32_t c); // char::is_alphanumeric
bool isNumeric(char32_t c);      // char::is_numeric (Nd, Nl, No)
bool isPunctuation(char32_t c);  // any P* category
bool isOther(char32_t c);        // any C* category
bool isMark(char32_t c);         // Mn, Mc, Me
bool isNonspacingMark(char32_t c);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalForm form);
/// Lowercases code point by code point (no context, as Rust's
/// char::to_lowercase).
std::string lowercase(std::string_view s);

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_UNICODE_H
