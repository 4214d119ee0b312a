// Parses a template's pieces into statements and expressions, with Jinja's
// operator precedence.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_PARSER_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_PARSER_H

#include "runtime/tokenizer/jinja/Ast.h"

#include <memory>
#include <string_view>

namespace weft::tokenizer::jinja {

/// Throws TemplateError (with the line) on a syntax error or on a construct,
/// filter or test outside the supported subset.
std::unique_ptr<Template> parseTemplate(std::string_view source);

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_PARSER_H
