// Splits a template into text and tags and tokenizes the tags.
#include "runtime/tokenizer/jinja/Lexer.h"

#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Text.h"

#include <cctype>
#include <optional>

namespace weft::tokenizer::jinja {
namespace {

enum class TagKind { Expression, Statement, Comment };

/// What a tag's right side does to the text after it.
enum class RightControl { None, TrimNewline, StripAll, Keep };

std::string normalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n')
        ++i;
    } else {
      out += source[i];
    }
  }
  // keep_trailing_newline=False drops one final newline.
  if (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

/// Python's unicode-escape decoding of a string literal's body.
std::string decodeEscapes(std::string_view body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 == body.size()) {
      out += c;
      continue;
    }
    char e = body[++i];
    auto hex = [&](int digits) -> char32_t {
      if (i + digits >= body.size())
        throw TemplateError("truncated escape in a string literal", line);
      std::string h(body.substr(i + 1, digits));
      for (char d : h)
        if (!std::isxdigit(static_cast<unsigned char>(d)))
          throw TemplateError("invalid escape in a string literal", line);
      i += digits;
      return static_cast<char32_t>(std::stoul(h, nullptr, 16));
    };
    switch (e) {
    case '\n':
      break;
    case '\\':
    case '\'':
    case '"':
      out += e;
      break;
    case 'n':
      out += '\n';
      break;
    case 't':
      out += '\t';
      break;
    case 'r':
      out += '\r';
      break;
    case 'a':
      out += '\a';
      break;
    case 'b':
      out += '\b';
      break;
    case 'f':
      out += '\f';
      break;
    case 'v':
      out += '\v';
      break;
    case 'x':
      appendUtf8(out, hex(2));
      break;
    case 'u':
      appendUtf8(out, hex(4));
      break;
    case 'U':
      appendUtf8(out, hex(8));
      break;
    case 'N':
      throw TemplateError("unsupported: \\N{...} escape in a string literal",
                          line);
    default:
      if (e >= '0' && e <= '7') {
        int value = e - '0';
        for (int n = 0; n < 2 && i + 1 < body.size() && body[i + 1] >= '0' &&
                        body[i + 1] <= '7';
             ++n)
          value = value * 8 + (body[++i] - '0');
        appendUtf8(out, static_cast<char32_t>(value));
      } else {
        out += '\\';
        out += e;
      }
    }
  }
  return out;
}

class TagLexer {
public:
  TagLexer(const std::string &src, size_t pos, int line, TagKind kind)
      : src(src), pos(pos), line(line), kind(kind) {}

  /// Tokenizes up to the closing delimiter; returns its right control.
  RightControl run(std::vector<Token> &tokens) {
    while (true) {
      skipSpace();
      if (pos >= src.size())
        throw TemplateError("unterminated tag", startLine);
      if (auto control = closing())
        return *control;
      tokens.push_back(next());
    }
  }
  size_t position() const { return pos; }
  int lineNumber() const { return line; }

private:
  void skipSpace() {
    while (pos < src.size() &&
           std::isspace(static_cast<unsigned char>(src[pos]))) {
      if (src[pos] == '\n')
        ++line;
      ++pos;
    }
  }

  bool at(std::string_view s) const {
    return src.compare(pos, s.size(), s) == 0;
  }

  std::optional<RightControl> closing() {
    if (depth > 0)
      return std::nullopt;
    std::string_view end = kind == TagKind::Expression ? "}}" : "%}";
    if (at(end)) {
      pos += 2;
      return kind == TagKind::Expression ? RightControl::None
                                         : RightControl::TrimNewline;
    }
    if ((src[pos] == '-' || src[pos] == '+') &&
        src.compare(pos + 1, 2, end) == 0) {
      RightControl control = src[pos] == '-' ? RightControl::StripAll
                             : kind == TagKind::Expression ? RightControl::None
                                                           : RightControl::Keep;
      pos += 3;
      return control;
    }
    return std::nullopt;
  }

  Token next() {
    Token tok;
    tok.line = line;
    char c = src[pos];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos;
      while (pos < src.size() &&
             (std::isalnum(static_cast<unsigned char>(src[pos])) ||
              src[pos] == '_'))
        ++pos;
      tok.kind = Token::Kind::Name;
      tok.text = src.substr(start, pos - start);
      return tok;
    }
    if (std::isdigit(static_cast<unsigned char>(c)))
      return number(tok);
    if (c == '\'' || c == '"')
      return stringLiteral(tok, c);
    static const char *ops[] = {
        "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
        ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
    for (const char *op : ops) {
      if (at(op)) {
        tok.kind = Token::Kind::Op;
        tok.text = op;
        pos += tok.text.size();
        if (tok.text == "(" || tok.text == "[" || tok.text == "{")
          ++depth;
        else if ((tok.text == ")" || tok.text == "]" || tok.text == "}") &&
                 depth > 0)
          --depth;
        return tok;
      }
    }
    throw TemplateError(std::string("unexpected character '") + c + "'", line);
  }

  Token number(Token &tok) {
    size_t start = pos;
    auto digits = [&] {
      while (pos < src.size() &&
             (std::isdigit(static_cast<unsigned char>(src[pos])) ||
              src[pos] == '_'))
        ++pos;
    };
    digits();
    bool isFloat = false;
    if (pos + 1 < src.size() && src[pos] == '.' &&
        std::isdigit(static_cast<unsigned char>(src[pos + 1]))) {
      isFloat = true;
      ++pos;
      digits();
    }
    if (pos < src.size() && (src[pos] == 'e' || src[pos] == 'E')) {
      size_t save = pos++;
      if (pos < src.size() && (src[pos] == '+' || src[pos] == '-'))
        ++pos;
      if (pos < src.size() &&
          std::isdigit(static_cast<unsigned char>(src[pos]))) {
        isFloat = true;
        digits();
      } else {
        pos = save;
      }
    }
    std::string text;
    for (char d : src.substr(start, pos - start))
      if (d != '_')
        text += d;
    tok.text = text;
    if (isFloat) {
      tok.kind = Token::Kind::Float;
      tok.floatValue = std::stod(text);
    } else {
      tok.kind = Token::Kind::Int;
      try {
        tok.intValue = std::stoll(text);
      } catch (const std::exception &) {
        throw TemplateError("integer literal out of range: " + text, line);
      }
    }
    return tok;
  }

  Token stringLiteral(Token &tok, char quote) {
    size_t start = ++pos;
    int startLn = line;
    while (pos < src.size() && src[pos] != quote) {
      if (src[pos] == '\\' && pos + 1 < src.size()) {
        if (src[pos + 1] == '\n')
          ++line;
        ++pos;
      }
      if (src[pos] == '\n')
        ++line;
      ++pos;
    }
    if (pos >= src.size())
      throw TemplateError("unterminated string literal", startLn);
    tok.kind = Token::Kind::String;
    tok.text = decodeEscapes(std::string_view(src).substr(start, pos - start),
                             startLn);
    ++pos;
    return tok;
  }

  const std::string &src;
  size_t pos;
  int line;
  int startLine = line;
  TagKind kind;
  int depth = 0;
};

bool allSpace(std::string_view text) {
  for (char32_t c : decodeUtf8(text))
    if (!isPythonSpace(c))
      return false;
  return true;
}

/// Applies the previous tag's right control to `text`; returns whether what it
/// consumed ended a line (Jinja's `line_starting`).
bool applyRightControl(std::string &text, RightControl control) {
  if (control == RightControl::TrimNewline) {
    if (!text.empty() && text[0] == '\n') {
      text.erase(0, 1);
      return true;
    }
    return false;
  }
  if (control == RightControl::StripAll) {
    std::string rest = pyStrip(text, std::nullopt, true, false);
    std::string consumed = text.substr(0, text.size() - rest.size());
    text = rest;
    return !consumed.empty() && consumed.back() == '\n';
  }
  return false;
}

/// Applies a tag's left control (`-`, `+`, or lstrip_blocks) to the text
/// before it.
void applyLeftControl(std::string &text, char control, TagKind kind,
                      bool lineStarting) {
  if (control == '-') {
    text = pyStrip(text, std::nullopt, false, true);
    return;
  }
  if (control == '+' || kind == TagKind::Expression)
    return;
  size_t lineStart = text.rfind('\n');
  lineStart = lineStart == std::string::npos ? 0 : lineStart + 1;
  if ((lineStart > 0 || lineStarting) && lineStart < text.size() &&
      allSpace(std::string_view(text).substr(lineStart)))
    text.erase(lineStart);
}

} // namespace

std::vector<Piece> lexTemplate(std::string_view rawSource) {
  std::string src = normalizeNewlines(rawSource);
  std::vector<Piece> pieces;
  size_t pos = 0;
  int line = 1;
  RightControl previous = RightControl::None;
  bool lineStarting = true;
  auto countLines = [](std::string_view s) {
    int n = 0;
    for (char c : s)
      n += c == '\n';
    return n;
  };
  while (true) {
    size_t tagStart = pos;
    while (true) {
      tagStart = src.find('{', tagStart);
      if (tagStart == std::string::npos || tagStart + 1 >= src.size())
        break;
      char c = src[tagStart + 1];
      if (c == '{' || c == '%' || c == '#')
        break;
      ++tagStart;
    }
    bool atEnd = tagStart == std::string::npos || tagStart + 1 >= src.size();
    std::string text =
        src.substr(pos, atEnd ? std::string::npos : tagStart - pos);
    int textLine = line;
    line += countLines(text);
    bool starting = applyRightControl(text, previous) ||
                    (previous == RightControl::None && lineStarting);
    if (atEnd) {
      if (!text.empty())
        pieces.push_back({Piece::Kind::Text, text, {}, textLine});
      break;
    }
    char opener = src[tagStart + 1];
    TagKind kind = opener == '{'   ? TagKind::Expression
                   : opener == '%' ? TagKind::Statement
                                   : TagKind::Comment;
    size_t bodyStart = tagStart + 2;
    char leftControl = 0;
    if (bodyStart < src.size() &&
        (src[bodyStart] == '-' || src[bodyStart] == '+')) {
      leftControl = src[bodyStart];
      ++bodyStart;
    }
    applyLeftControl(text, leftControl, kind, starting);
    if (!text.empty())
      pieces.push_back({Piece::Kind::Text, text, {}, textLine});
    int tagLine = line;
    if (kind == TagKind::Comment) {
      size_t end = src.find("#}", bodyStart);
      if (end == std::string::npos)
        throw TemplateError("unterminated comment", tagLine);
      line += countLines(
          std::string_view(src).substr(bodyStart, end + 2 - bodyStart));
      previous = end > bodyStart && src[end - 1] == '-' ? RightControl::StripAll
                 : end > bodyStart && src[end - 1] == '+'
                     ? RightControl::Keep
                     : RightControl::TrimNewline;
      pos = end + 2;
    } else {
      TagLexer lexer(src, bodyStart, line, kind);
      Piece piece;
      piece.kind = kind == TagKind::Expression ? Piece::Kind::Expression
                                               : Piece::Kind::Statement;
      piece.line = tagLine;
      previous = lexer.run(piece.tokens);
      Token end;
      end.line = lexer.lineNumber();
      piece.tokens.push_back(end);
      pieces.push_back(std::move(piece));
      line = lexer.lineNumber();
      pos = lexer.position();
    }
    lineStarting = false;
  }
  return pieces;
}

} // namespace weft::tokenizer::jinja
