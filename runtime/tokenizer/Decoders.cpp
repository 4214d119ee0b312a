// Decoders of tokenizer.json: each rewrites the list of token strings, as the
// Rust library's decode_chain does, before the tokens are joined.
#include "runtime/tokenizer/Components.h"

#include "runtime/tokenizer/Unicode.h"

#include <nlohmann/json.hpp>

namespace weft::tokenizer {
using nlohmann::json;

namespace {
void replaceAll(std::string &s, std::string_view from, std::string_view to) {
  if (from.empty())
    return;
  for (size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

class ByteLevelDecoder : public Decoder {
public:
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::string bytes;
    for (const std::string &t : tokens) {
      size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < t.size();) {
        int b = byteLevelByte(nextCodePoint(t, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes += static_cast<char>(b);
      }
      // A token outside the byte alphabet (an added token) stays as is.
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8Lossy(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
public:
  MetaspaceDecoder(std::string rep, bool prepend)
      : rep(std::move(rep)), prepend(prepend) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      replaceAll(tokens[i], rep, i == 0 && prepend ? "" : " ");
  }

private:
  std::string rep;
  bool prepend;
};

int hexDigit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

class ByteFallbackDecoder : public Decoder {
public:
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty())
        return;
      if (isValidUtf8(pending))
        out.push_back(pending);
      else
        for (size_t i = 0; i < pending.size(); ++i)
          out.push_back("\xEF\xBF\xBD");
      pending.clear();
    };
    for (std::string &t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        int hi = hexDigit(t[3]), lo = hexDigit(t[4]);
        if (hi >= 0 && lo >= 0)
          byte = hi * 16 + lo;
        else if (t[3] == '+' && lo >= 0)
          byte = lo; // Rust's from_str_radix takes a leading '+'.
      }
      if (byte >= 0) {
        pending += static_cast<char>(byte);
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
public:
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::string all;
    for (const auto &t : tokens)
      all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content(content), start(start), stop(stop) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (std::string &t : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;
      for (size_t i = 0; i < t.size();) {
        size_t b = i;
        chars.push_back({b, nextCodePoint(t, i)});
      }
      size_t startCut = 0, stopCut = chars.size();
      for (size_t i = 0; i < start && i < chars.size(); ++i) {
        if (chars[i].second != content)
          break;
        startCut = i + 1;
      }
      for (size_t i = 0; i < stop && i < chars.size(); ++i) {
        size_t index = chars.size() - i - 1;
        if (chars[index].second != content)
          break;
        stopCut = index;
      }
      if (startCut >= stopCut) {
        t.clear();
        continue;
      }
      size_t b = chars[startCut].first;
      size_t e = stopCut < chars.size() ? chars[stopCut].first : t.size();
      t = t.substr(b, e - b);
    }
  }

private:
  char32_t content;
  size_t start, stop;
};

class ReplaceDecoder : public Decoder {
public:
  ReplaceDecoder(std::shared_ptr<Regex> re, std::string content)
      : re(std::move(re)), content(std::move(content)) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::vector<Span> spans;
    for (std::string &t : tokens) {
      spans.clear();
      re->findAll(t, spans);
      if (spans.empty())
        continue;
      std::string out;
      size_t prev = 0;
      for (Span s : spans) {
        out.append(t, prev, s.begin - prev);
        out += content;
        prev = s.end;
      }
      out.append(t, prev);
      t = std::move(out);
    }
  }

private:
  std::shared_ptr<Regex> re;
  std::string content;
};

/// The Rust library's wordpiece::cleanup: English spacing before
/// punctuation and contractions.
void cleanup(std::string &s) {
  static const std::pair<const char *, const char *> rules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
      {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
      {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : rules)
    replaceAll(s, from, to);
}

class WordPieceDecoder : public Decoder {
public:
  WordPieceDecoder(std::string prefix, bool clean)
      : prefix(std::move(prefix)), clean(clean) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string &t = tokens[i];
      if (i != 0) {
        // replacen(prefix, "", 1): the first occurrence, wherever it is.
        if (t.compare(0, prefix.size(), prefix) == 0)
          t.erase(0, prefix.size());
        else
          t = " " + t;
      }
      if (clean)
        cleanup(t);
    }
  }

private:
  std::string prefix;
  bool clean;
};

class BpeDecoder : public Decoder {
public:
  explicit BpeDecoder(std::string suffix) : suffix(std::move(suffix)) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      replaceAll(tokens[i], suffix, i + 1 == tokens.size() ? "" : " ");
  }

private:
  std::string suffix;
};

class CtcDecoder : public Decoder {
public:
  CtcDecoder(std::string pad, std::string delimiter, bool clean)
      : pad(std::move(pad)), delimiter(std::move(delimiter)), clean(clean) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1])
        continue;
      std::string t = tokens[i];
      replaceAll(t, pad, "");
      if (clean) {
        cleanup(t);
        replaceAll(t, delimiter, " ");
      }
      if (!t.empty())
        out.push_back(std::move(t));
    }
    tokens = std::move(out);
  }

private:
  std::string pad, delimiter;
  bool clean;
};

class SequenceDecoder : public Decoder {
public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> s)
      : steps(std::move(s)) {}
  void decodeChain(std::vector<std::string> &tokens) const override {
    for (const auto &d : steps)
      d->decodeChain(tokens);
  }

private:
  std::vector<std::unique_ptr<Decoder>> steps;
};

char32_t singleChar(const std::string &s, const std::string &path) {
  size_t i = 0;
  if (s.empty() || (nextCodePoint(s, i), i != s.size()))
    configError(path, "expected one character");
  i = 0;
  return nextCodePoint(s, i);
}
} // namespace

std::unique_ptr<Decoder> buildDecoder(const json &j, const std::string &path) {
  std::string type = getString(j, "type", path);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    std::string rep = getString(j, "replacement", path, "\xE2\x96\x81");
    singleChar(rep, path + ".replacement");
    bool prepend = getBool(j, "add_prefix_space", path, true);
    if (field(j, "prepend_scheme"))
      prepend = getString(j, "prepend_scheme", path) != "never";
    return std::make_unique<MetaspaceDecoder>(rep, prepend);
  }
  if (type == "ByteFallback")
    return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse")
    return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(
        singleChar(getString(j, "content", path), path + ".content"),
        getInt(j, "start", path, 0), getInt(j, "stop", path, 0));
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(getPattern(j, "pattern", path),
                                            getString(j, "content", path));
  if (type == "WordPiece")
    return std::make_unique<WordPieceDecoder>(
        getString(j, "prefix", path, "##"), getBool(j, "cleanup", path, true));
  if (type == "BPEDecoder")
    return std::make_unique<BpeDecoder>(getString(j, "suffix", path, "</w>"));
  if (type == "CTC")
    return std::make_unique<CtcDecoder>(
        getString(j, "pad_token", path, "<pad>"),
        getString(j, "word_delimiter_token", path, "|"),
        getBool(j, "cleanup", path, true));
  if (type == "Sequence") {
    const json *list = field(j, "decoders");
    if (!list || !list->is_array())
      configError(path + ".decoders", "expected an array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list->size(); ++i)
      steps.push_back(buildDecoder((*list)[i], path + ".decoders[" +
                                                   std::to_string(i) + "]"));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  configError(path + ".type", "unsupported '" + type + "'");
}

} // namespace weft::tokenizer
