// Renders a parsed template: statements, scopes, expressions, and the
// globals transformers gives chat templates.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_INTERPRETER_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_INTERPRETER_H

#include "runtime/tokenizer/jinja/Ast.h"

#include <ctime>
#include <string>

namespace weft::tokenizer::jinja {

/// raise_exception, strftime_now (reading the clock as `now`), namespace,
/// dict and range.
ValueDict chatTemplateGlobals(std::time_t now);

/// Renders `tmpl` with `variables` (globals included); throws TemplateError
/// carrying the line that failed.
std::string renderTemplate(const Template &tmpl, const ValueDict &variables);

/// The message raise_exception's errors carry before the template's text.
inline constexpr const char *kRaisedPrefix = "the template raised an error: ";

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_INTERPRETER_H
