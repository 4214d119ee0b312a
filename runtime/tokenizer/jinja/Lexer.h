// Splits a template into text and tags, applying Jinja's whitespace control
// as transformers configures it (trim_blocks, lstrip_blocks, `-` and `+`),
// and tokenizes the expressions inside tags.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_LEXER_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_LEXER_H

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer::jinja {

struct Token {
  enum class Kind { Name, String, Int, Float, Op, End };
  Kind kind = Kind::End;
  std::string text; // name, operator, or the decoded string literal
  int64_t intValue = 0;
  double floatValue = 0;
  int line = 0;

  bool isOp(std::string_view op) const {
    return kind == Kind::Op && text == op;
  }
  bool isName(std::string_view name) const {
    return kind == Kind::Name && text == name;
  }
};

/// Text to copy, or an `{{ expression }}` or `{% statement %}` tag (comments
/// are dropped). Every tag's tokens end with an End token.
struct Piece {
  enum class Kind { Text, Expression, Statement };
  Kind kind = Kind::Text;
  std::string text;
  std::vector<Token> tokens;
  int line = 0;
};

/// Throws TemplateError on an unterminated tag or string or an unexpected
/// character.
std::vector<Piece> lexTemplate(std::string_view source);

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_LEXER_H
