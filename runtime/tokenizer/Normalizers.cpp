// Normalizers of tokenizer.json: Unicode forms, Lowercase, StripAccents,
// Strip, Replace, Prepend, BertNormalizer and Sequence.
#include "runtime/tokenizer/Components.h"

#include "runtime/tokenizer/Unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace weft::tokenizer {
using nlohmann::json;

namespace {
class FormNormalizer : public Normalizer {
public:
  explicit FormNormalizer(NormalForm form) : form(form) {}
  std::string normalize(std::string s) const override {
    return tokenizer::normalize(s, form);
  }

private:
  NormalForm form;
};

class LowercaseNormalizer : public Normalizer {
public:
  std::string normalize(std::string s) const override { return lowercase(s); }
};

/// Keeps the code points `keep` accepts.
template <typename Pred>
std::string filterChars(std::string_view s, Pred keep) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t b = i;
    char32_t c = nextCodePoint(s, i);
    if (keep(c))
      out.append(s.substr(b, i - b));
  }
  return out;
}

class StripAccentsNormalizer : public Normalizer {
public:
  std::string normalize(std::string s) const override {
    return filterChars(s, [](char32_t c) { return !isMark(c); });
  }
};

class StripNormalizer : public Normalizer {
public:
  StripNormalizer(bool left, bool right) : left(left), right(right) {}
  std::string normalize(std::string s) const override {
    // [first, last) spans the non-whitespace code points.
    size_t first = s.size(), last = 0;
    for (size_t i = 0; i < s.size();) {
      size_t at = i;
      if (!isWhitespace(nextCodePoint(s, i))) {
        first = std::min(first, at);
        last = i;
      }
    }
    if (first == s.size())
      return left || right ? std::string() : s;
    size_t b = left ? first : 0, e = right ? last : s.size();
    return s.substr(b, e - b);
  }

private:
  bool left, right;
};

class ReplaceNormalizer : public Normalizer {
public:
  ReplaceNormalizer(std::shared_ptr<Regex> re, std::string content)
      : re(std::move(re)), content(std::move(content)) {}
  std::string normalize(std::string s) const override {
    std::vector<Span> spans;
    re->findAll(s, spans);
    if (spans.empty())
      return s;
    std::string out;
    size_t prev = 0;
    for (Span sp : spans) {
      out.append(s, prev, sp.begin - prev);
      out += content;
      prev = sp.end;
    }
    out.append(s, prev);
    return out;
  }

private:
  std::shared_ptr<Regex> re;
  std::string content;
};

class PrependNormalizer : public Normalizer {
public:
  explicit PrependNormalizer(std::string prefix) : prefix(std::move(prefix)) {}
  std::string normalize(std::string s) const override {
    return s.empty() ? s : prefix + s;
  }

private:
  std::string prefix;
};

bool isChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

class BertNormalizer : public Normalizer {
public:
  BertNormalizer(bool cleanText, bool chinese, bool stripAccents, bool lower)
      : cleanText(cleanText), chinese(chinese), stripAccents(stripAccents),
        lower(lower) {}
  std::string normalize(std::string s) const override {
    if (cleanText || chinese) {
      std::string out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {
        size_t b = i;
        char32_t c = nextCodePoint(s, i);
        if (cleanText) {
          bool control = c != '\t' && c != '\n' && c != '\r' && isOther(c);
          if (c == 0 || c == 0xFFFD || control)
            continue;
          if (isWhitespace(c)) {
            out += ' ';
            continue;
          }
        }
        if (chinese && isChineseChar(c)) {
          out += ' ';
          out.append(s, b, i - b);
          out += ' ';
          continue;
        }
        out.append(s, b, i - b);
      }
      s = std::move(out);
    }
    if (stripAccents)
      s = filterChars(tokenizer::normalize(s, NormalForm::NFD),
                      [](char32_t c) { return !isNonspacingMark(c); });
    if (lower)
      s = lowercase(s);
    return s;
  }

private:
  bool cleanText, chinese, stripAccents, lower;
};

class SequenceNormalizer : public Normalizer {
public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps(std::move(steps)) {}
  std::string normalize(std::string s) const override {
    for (const auto &n : steps)
      s = n->normalize(std::move(s));
    return s;
  }

private:
  std::vector<std::unique_ptr<Normalizer>> steps;
};
} // namespace

std::unique_ptr<Normalizer> buildNormalizer(const json &j,
                                            const std::string &path) {
  std::string type = getString(j, "type", path);
  if (type == "NFC")
    return std::make_unique<FormNormalizer>(NormalForm::NFC);
  if (type == "NFD")
    return std::make_unique<FormNormalizer>(NormalForm::NFD);
  if (type == "NFKC")
    return std::make_unique<FormNormalizer>(NormalForm::NFKC);
  if (type == "NFKD")
    return std::make_unique<FormNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase")
    return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents")
    return std::make_unique<StripAccentsNormalizer>();
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(
        getBool(j, "strip_left", path, true),
        getBool(j, "strip_right", path, true));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(getPattern(j, "pattern", path),
                                               getString(j, "content", path));
  if (type == "Prepend")
    return std::make_unique<PrependNormalizer>(getString(j, "prepend", path));
  if (type == "BertNormalizer") {
    bool lower = getBool(j, "lowercase", path, true);
    const json *strip = field(j, "strip_accents");
    bool stripAccents = strip ? getBool(j, "strip_accents", path) : lower;
    return std::make_unique<BertNormalizer>(
        getBool(j, "clean_text", path, true),
        getBool(j, "handle_chinese_chars", path, true), stripAccents, lower);
  }
  if (type == "Sequence") {
    const json *list = field(j, "normalizers");
    if (!list || !list->is_array())
      configError(path + ".normalizers", "expected an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list->size(); ++i)
      steps.push_back(buildNormalizer((*list)[i], path + ".normalizers[" +
                                                      std::to_string(i) + "]"));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  configError(path + ".type", "unsupported '" + type + "'");
}

} // namespace weft::tokenizer
