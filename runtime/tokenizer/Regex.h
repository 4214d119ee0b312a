// A compiled PCRE2 pattern (UTF, Unicode properties, JIT) with the one
// operation the tokenizer needs: every non-overlapping match in a string.
#ifndef WEFT_RUNTIME_TOKENIZER_REGEX_H
#define WEFT_RUNTIME_TOKENIZER_REGEX_H

#include "runtime/support/Status.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace weft::tokenizer {

struct Span {
  size_t begin, end;
};

class Regex {
public:
  /// Compiles `pattern`; the error names the pattern and PCRE2's reason.
  static runtime::Result<std::shared_ptr<Regex>>
  compile(const std::string &pattern);
  /// `text` quoted so that it matches literally.
  static std::string escape(std::string_view text);
  ~Regex();

  /// Appends the spans of every match, left to right; an empty match
  /// advances by one code point, as Rust's and Oniguruma's iterators do.
  void findAll(std::string_view text, std::vector<Span> &out) const;

private:
  Regex() = default;
  struct Impl;
  std::unique_ptr<Impl> impl;
};

} // namespace weft::tokenizer

#endif // WEFT_RUNTIME_TOKENIZER_REGEX_H
