// Pre-tokenizers of tokenizer.json: ByteLevel, Split, Metaspace, Whitespace,
// WhitespaceSplit, BertPreTokenizer, Digits, Punctuation and Sequence. Each
// splits a piece at the matches of a pattern, then keeps, drops or merges
// the delimiters as the Rust library's SplitDelimiterBehavior says.
#include "runtime/tokenizer/Components.h"

#include "runtime/tokenizer/Unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace weft::tokenizer {
using nlohmann::json;

namespace {
enum class Behavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

/// A run of the piece: a match of the pattern or the text between two.
struct Match {
  size_t begin, end;
  bool isMatch;
};

/// Covers `text` with the regex's matches and the gaps between them.
void regexMatches(const Regex &re, std::string_view text, bool invert,
                  std::vector<Match> &out) {
  thread_local std::vector<Span> spans;
  spans.clear();
  re.findAll(text, spans);
  size_t prev = 0;
  for (Span s : spans) {
    if (prev != s.begin)
      out.push_back({prev, s.begin, invert});
    out.push_back({s.begin, s.end, !invert});
    prev = s.end;
  }
  if (prev != text.size())
    out.push_back({prev, text.size(), invert});
}

/// Each code point `pred` accepts is a match of its own.
template <typename Pred>
void charMatches(std::string_view text, Pred pred, std::vector<Match> &out) {
  size_t last = 0;
  for (size_t i = 0; i < text.size();) {
    size_t b = i;
    if (pred(nextCodePoint(text, i))) {
      if (last < b)
        out.push_back({last, b, false});
      out.push_back({b, i, true});
      last = i;
    }
  }
  if (last < text.size())
    out.push_back({last, text.size(), false});
}

/// Appends the parts of `text` the behavior keeps to `out`.
/// The credit left to a part starting `offset` bytes into its piece.
uint32_t creditAt(uint32_t credit, size_t offset) {
  return credit > offset ? credit - static_cast<uint32_t>(offset) : 0;
}

void splitByBehavior(std::string_view text, uint32_t credit,
                     std::vector<Match> &matches, Behavior behavior,
                     PieceList &out) {
  thread_local std::vector<Match> parts;
  parts.clear();
  switch (behavior) {
  case Behavior::Isolated:
    for (Match m : matches)
      parts.push_back({m.begin, m.end, false});
    break;
  case Behavior::Removed:
    parts = matches;
    break;
  case Behavior::Contiguous: {
    bool previous = false;
    for (Match m : matches) {
      if (m.isMatch == previous && !parts.empty())
        parts.back().end = m.end;
      else
        parts.push_back({m.begin, m.end, false});
      previous = m.isMatch;
    }
    break;
  }
  case Behavior::MergedWithPrevious: {
    bool previous = false;
    for (Match m : matches) {
      if (m.isMatch && !previous && !parts.empty())
        parts.back().end = m.end;
      else
        parts.push_back({m.begin, m.end, false});
      previous = m.isMatch;
    }
    break;
  }
  case Behavior::MergedWithNext: {
    bool previous = false;
    for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
      if (it->isMatch && !previous && !parts.empty())
        parts.back().begin = it->begin;
      else
        parts.push_back({it->begin, it->end, false});
      previous = it->isMatch;
    }
    std::reverse(parts.begin(), parts.end());
    break;
  }
  }
  for (Match p : parts)
    if (!p.isMatch)
      out.add(text.substr(p.begin, p.end - p.begin), creditAt(credit, p.begin));
}

Behavior parseBehavior(const json &j, const std::string &path) {
  std::string b = getString(j, "behavior", path);
  if (b == "Removed")
    return Behavior::Removed;
  if (b == "Isolated")
    return Behavior::Isolated;
  if (b == "MergedWithPrevious")
    return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext")
    return Behavior::MergedWithNext;
  if (b == "Contiguous")
    return Behavior::Contiguous;
  configError(path + ".behavior", "unsupported '" + b + "'");
}

class SplitPreTokenizer : public PreTokenizer {
public:
  SplitPreTokenizer(std::shared_ptr<Regex> re, Behavior behavior, bool invert)
      : re(std::move(re)), behavior(behavior), invert(invert) {}
  void split(const PieceList &in, PieceList &out) const override {
    thread_local std::vector<Match> matches;
    for (const auto &p : in.pieces) {
      matches.clear();
      std::string_view text = in.view(p);
      regexMatches(*re, text, invert, matches);
      splitByBehavior(text, p.startCredit, matches, behavior, out);
    }
  }

private:
  std::shared_ptr<Regex> re;
  Behavior behavior;
  bool invert;
};

/// Splits at code points a predicate accepts.
template <typename Pred> class CharSplitPreTokenizer : public PreTokenizer {
public:
  CharSplitPreTokenizer(Pred pred, Behavior behavior)
      : pred(pred), behavior(behavior) {}
  void split(const PieceList &in, PieceList &out) const override {
    thread_local std::vector<Match> matches;
    for (const auto &p : in.pieces) {
      matches.clear();
      std::string_view text = in.view(p);
      charMatches(text, pred, matches);
      splitByBehavior(text, p.startCredit, matches, behavior, out);
    }
  }

private:
  Pred pred;
  Behavior behavior;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> charSplit(Pred pred, Behavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Pred>>(pred, behavior);
}

const char *kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| )"
                           R"(?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
public:
  ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex)
      : addPrefixSpace(addPrefixSpace) {
    if (useRegex)
      re = *Regex::compile(kGpt2Pattern);
  }
  void split(const PieceList &in, PieceList &out) const override {
    thread_local std::string text;
    thread_local std::vector<Span> spans;
    for (const auto &p : in.pieces) {
      text.clear();
      // The prepended space aligns with the piece's first character.
      uint32_t credit = p.startCredit;
      if (addPrefixSpace && in.view(p)[0] != ' ') {
        text += ' ';
        credit += credit > 0;
      }
      text.append(in.view(p));
      spans.clear();
      if (re)
        re->findAll(text, spans);
      else
        spans.push_back({0, text.size()});
      // Isolated: gaps between matches are pieces too.
      size_t prev = 0;
      auto emit = [&](size_t b, size_t e) {
        if (b == e)
          return;
        uint32_t start = static_cast<uint32_t>(out.text.size());
        uint32_t mappedCredit = 0;
        for (size_t i = b; i < e; ++i) {
          out.text += byteLevelChar(static_cast<uint8_t>(text[i]));
          if (i < credit)
            mappedCredit = static_cast<uint32_t>(out.text.size()) - start;
        }
        out.pieces.push_back(
            {start, static_cast<uint32_t>(out.text.size()), mappedCredit});
      };
      for (Span s : spans) {
        emit(prev, s.begin);
        emit(s.begin, s.end);
        prev = s.end;
      }
      emit(prev, text.size());
    }
  }

private:
  bool addPrefixSpace;
  std::shared_ptr<Regex> re;
};

class MetaspacePreTokenizer : public PreTokenizer {
public:
  enum class Prepend { Always, First, Never };
  MetaspacePreTokenizer(char32_t replacement, Prepend prepend, bool splitAtIt)
      : replacement(replacement), prepend(prepend), splitAtIt(splitAtIt) {
    appendUtf8(rep, replacement);
  }
  void split(const PieceList &in, PieceList &out) const override {
    thread_local std::string text;
    thread_local std::vector<Match> matches;
    for (const auto &p : in.pieces) {
      text.clear();
      std::string_view piece = in.view(p);
      bool startsWithRep =
          piece.substr(0, rep.size()) == rep || (piece[0] == ' ');
      if (!startsWithRep && (prepend == Prepend::Always ||
                             (prepend == Prepend::First && p.atStart())))
        text += rep;
      uint32_t credit = 0;
      for (size_t i = 0; i < piece.size(); ++i) {
        if (piece[i] == ' ')
          text += rep;
        else
          text += piece[i];
        if (i < p.startCredit)
          credit = static_cast<uint32_t>(text.size());
      }
      if (!splitAtIt) {
        out.add(text, credit);
        continue;
      }
      matches.clear();
      charMatches(
          text, [&](char32_t c) { return c == replacement; }, matches);
      splitByBehavior(text, credit, matches, Behavior::MergedWithNext, out);
    }
  }

private:
  char32_t replacement;
  std::string rep;
  Prepend prepend;
  bool splitAtIt;
};

class SequencePreTokenizer : public PreTokenizer {
public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> s)
      : steps(std::move(s)) {}
  void split(const PieceList &in, PieceList &out) const override {
    if (steps.empty()) {
      out = in;
      return;
    }
    PieceList a = in, b;
    for (const auto &step : steps) {
      b.clear();
      step->split(a, b);
      std::swap(a, b);
    }
    for (const auto &p : a.pieces)
      out.add(a.view(p), p.startCredit);
  }

private:
  std::vector<std::unique_ptr<PreTokenizer>> steps;
};

} // namespace

std::unique_ptr<PreTokenizer> buildPreTokenizer(const json &j,
                                                const std::string &path) {
  std::string type = getString(j, "type", path);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(
        getBool(j, "add_prefix_space", path, true),
        getBool(j, "use_regex", path, true));
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(
        getPattern(j, "pattern", path), parseBehavior(j, path),
        getBool(j, "invert", path, false));
  if (type == "Metaspace") {
    std::string rep = getString(j, "replacement", path, "\xE2\x96\x81");
    size_t i = 0;
    if (rep.empty() || (nextCodePoint(rep, i), i != rep.size()))
      configError(path + ".replacement", "expected one character");
    i = 0;
    char32_t c = nextCodePoint(rep, i);
    auto prepend = MetaspacePreTokenizer::Prepend::Always;
    if (field(j, "prepend_scheme")) {
      std::string s = getString(j, "prepend_scheme", path);
      if (s == "first")
        prepend = MetaspacePreTokenizer::Prepend::First;
      else if (s == "never")
        prepend = MetaspacePreTokenizer::Prepend::Never;
      else if (s != "always")
        configError(path + ".prepend_scheme", "unsupported '" + s + "'");
    } else if (!getBool(j, "add_prefix_space", path, true)) {
      prepend = MetaspacePreTokenizer::Prepend::Never;
    }
    return std::make_unique<MetaspacePreTokenizer>(
        c, prepend, getBool(j, "split", path, true));
  }
  if (type == "Whitespace") {
    // \w+|[^\w\s]+, keeping the matches and dropping what lies between.
    // Oniguruma's \w: Alphabetic, marks, decimal digits, connector
    // punctuation and the joiners.
    auto re = Regex::compile(
        R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]+|)"
        R"([^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}\s]+)");
    return std::make_unique<SplitPreTokenizer>(*re, Behavior::Removed, true);
  }
  if (type == "WhitespaceSplit")
    return charSplit(isWhitespace, Behavior::Removed);
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(charSplit(isWhitespace, Behavior::Removed));
    steps.push_back(charSplit(
        [](char32_t c) {
          return (c < 0x80 && std::ispunct(static_cast<int>(c))) ||
                 isPunctuation(c);
        },
        Behavior::Isolated));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Digits")
    return charSplit(isNumeric, getBool(j, "individual_digits", path, false)
                                    ? Behavior::Isolated
                                    : Behavior::Contiguous);
  if (type == "Punctuation") {
    Behavior b =
        field(j, "behavior") ? parseBehavior(j, path) : Behavior::Isolated;
    return charSplit(
        [](char32_t c) {
          return (c < 0x80 && std::ispunct(static_cast<int>(c))) ||
                 isPunctuation(c);
        },
        b);
  }
  if (type == "Sequence") {
    const json *list = field(j, "pretokenizers");
    if (!list || !list->is_array())
      configError(path + ".pretokenizers", "expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list->size(); ++i)
      steps.push_back(buildPreTokenizer(
          (*list)[i], path + ".pretokenizers[" + std::to_string(i) + "]"));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  configError(path + ".type", "unsupported '" + type + "'");
}

} // namespace weft::tokenizer
