// UTF-8 text as Python's str sees it: code points, Unicode whitespace,
// strip/split/splitlines, and the repr of floats and strings.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_TEXT_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_TEXT_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer::jinja {

/// Decodes UTF-8 into code points (invalid bytes become U+FFFD).
std::u32string decodeUtf8(std::string_view text);
std::string encodeUtf8(std::u32string_view text);
void appendUtf8(std::string &out, char32_t c);
/// Number of code points, Python's len(str).
size_t codePointCount(std::string_view text);
bool isAscii(std::string_view text);

/// Python's str.isspace() for one code point.
bool isPythonSpace(char32_t c);
/// Python's str.strip/lstrip/rstrip: Unicode whitespace, or the code points of
/// `chars` when given.
std::string pyStrip(std::string_view text,
                    const std::optional<std::string> &chars, bool left,
                    bool right);
/// Python's str.split(sep, maxsplit); no `sep` splits on runs of whitespace.
std::vector<std::string> pySplit(std::string_view text,
                                 const std::optional<std::string> &sep,
                                 long maxSplit);
/// Python's str.splitlines() (without keepends).
std::vector<std::string> pySplitLines(std::string_view text);
/// Python's str.replace(old, new, count).
std::string pyReplace(std::string_view text, std::string_view from,
                      std::string_view to, long count);

/// Python's repr(float) (also what json.dumps writes for a float).
std::string pyFloatRepr(double value);
/// Python's repr(str): quoted, with escapes.
std::string pyStrRepr(std::string_view text);

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_TEXT_H
