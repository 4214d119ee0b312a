// The failure a template raises while it is parsed or rendered.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_ERROR_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_ERROR_H

#include <stdexcept>
#include <string>

namespace weft::tokenizer::jinja {

/// Thrown inside the interpreter, where errors surface many calls deep, and
/// turned into a Status at ChatTemplate's boundary. `line` is 0 while unknown:
/// the statement or expression that catches it fills it in.
class TemplateError : public std::runtime_error {
public:
  TemplateError(std::string message, int line = 0)
      : std::runtime_error(message), msg(std::move(message)), line(line) {}
  const std::string &message() const { return msg; }
  int lineNumber() const { return line; }
  void setLineIfUnknown(int l) {
    if (line == 0)
      line = l;
  }

private:
  std::string msg;
  int line;
};

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_ERROR_H
