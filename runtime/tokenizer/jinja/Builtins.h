// Jinja's filters, tests and attribute lookup, and the Python methods of
// str, dict and list that chat templates call, as jinja2's sandbox allows
// them.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_BUILTINS_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_BUILTINS_H

#include "runtime/tokenizer/jinja/Value.h"

#include <string>
#include <vector>

namespace weft::tokenizer::jinja {

/// The variable a `{% filter %}` block's rendered body is bound to.
inline constexpr const char *kFilterBlockBody = "\x01filter-body";

bool isKnownFilter(const std::string &name);
bool isKnownTest(const std::string &name);
/// Jinja built-ins weft does not implement: a template naming one still
/// parses (it may sit in a branch never taken) and fails where it runs.
bool isOtherJinjaFilter(const std::string &name);
bool isOtherJinjaTest(const std::string &name);

/// All of these throw TemplateError where Python or Jinja would raise.
Value applyFilter(const std::string &name, const Value &subject,
                  CallArgs &args);
bool applyTest(const std::string &name, const Value &subject, CallArgs &args);
/// Python's `item in container` (Undefined contains nothing).
bool contains(const Value &container, const Value &item);
/// `obj.name`: a method of a str, dict or list, else an item, else Undefined.
Value getAttribute(const Value &obj, const std::string &name);
/// `obj[key]`: an item, else Undefined.
Value getItem(const Value &obj, const Value &key);
/// `obj[start:stop:step]` of a list or str; absent parts are Undefined.
Value getSlice(const Value &obj, const Value &start, const Value &stop,
               const Value &step);

/// Binds call arguments to a signature the way Python does and reports
/// the misuses Python would.
class ArgReader {
public:
  ArgReader(CallArgs &args, std::string function,
            std::vector<std::string> names, bool variadic = false);
  /// The argument at `index` in the signature, or null where not passed.
  const Value *get(size_t index) const;
  Value getOr(size_t index, Value fallback) const;
  /// Positional arguments beyond the signature (for `*args`).
  std::vector<Value> rest() const;

private:
  CallArgs &args;
  std::string function;
  std::vector<std::string> names;
};

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_BUILTINS_H
