// Matching of added tokens in raw or normalized text.
#include "runtime/tokenizer/AddedVocabulary.h"

#include "runtime/tokenizer/Unicode.h"

#include <unicode/uchar.h>

#include <algorithm>

namespace weft::tokenizer {

namespace {
/// Rust regex's \w: Alphabetic, marks, decimal digits, connector
/// punctuation and the joiners.
bool isWordChar(char32_t c) {
  UChar32 u = static_cast<UChar32>(c);
  int8_t t = u_charType(u);
  return u_isUAlphabetic(u) || isMark(c) || t == U_DECIMAL_DIGIT_NUMBER ||
         t == U_CONNECTOR_PUNCTUATION || c == 0x200C || c == 0x200D;
}

char32_t lastCodePoint(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80)
    --i;
  return nextCodePoint(s, i);
}
} // namespace

void AddedVocabulary::add(const AddedToken &token, std::string pattern) {
  tokens.push_back(token);
  tokens.back().decoded = token.normalized ? pattern : token.content;
  if (pattern.empty())
    return;
  Set &set = sets[token.normalized ? 1 : 0];
  auto &bucket = set.byFirstByte[static_cast<unsigned char>(pattern[0])];
  bucket.push_back({std::move(pattern), tokens.size() - 1});
  std::stable_sort(bucket.begin(), bucket.end(),
                   [](const Pattern &a, const Pattern &b) {
                     return a.text.size() > b.text.size();
                   });
  set.empty = false;
}

const AddedToken *AddedVocabulary::byId(uint32_t id) const {
  for (const AddedToken &t : tokens)
    if (t.id == id)
      return &t;
  return nullptr;
}

std::optional<uint32_t>
AddedVocabulary::byContent(std::string_view content) const {
  for (const AddedToken &t : tokens)
    if (t.content == content)
      return t.id;
  return std::nullopt;
}

void AddedVocabulary::split(std::string_view text, bool normalizedSet,
                            std::vector<Segment> &out) const {
  out.clear();
  const Set &set = sets[normalizedSet ? 1 : 0];
  size_t emitted = 0;
  for (size_t pos = 0; !set.empty && pos < text.size();) {
    const auto &bucket = set.byFirstByte[static_cast<unsigned char>(text[pos])];
    const Pattern *hit = nullptr;
    for (const Pattern &p : bucket)
      if (text.compare(pos, p.text.size(), p.text) == 0) {
        hit = &p;
        break;
      }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + hit->text.size();
    pos = stop;
    const AddedToken &tok = tokens[hit->token];
    if (tok.singleWord) {
      bool startOk =
          start == 0 || !isWordChar(lastCodePoint(text.substr(0, start)));
      size_t i = stop;
      bool stopOk = stop == text.size() || !isWordChar(nextCodePoint(text, i));
      if (!startOk || !stopOk)
        continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > 0) {
        size_t b = s - 1;
        while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80)
          --b;
        size_t i = b;
        if (!isWhitespace(nextCodePoint(text, i)))
          break;
        s = b;
      }
      // Spaces an earlier match already took stay with it.
      start = std::max(s, emitted);
    }
    if (tok.rstrip) {
      for (size_t i = stop; i < text.size();) {
        if (!isWhitespace(nextCodePoint(text, i)))
          break;
        stop = i;
      }
    }
    if (emitted < start)
      out.push_back({emitted, start, std::nullopt});
    out.push_back({start, stop, tok.id});
    emitted = stop;
  }
  if (emitted < text.size())
    out.push_back({emitted, text.size(), std::nullopt});
}

} // namespace weft::tokenizer
