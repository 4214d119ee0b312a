// A small JSON parser for safetensors headers.
#ifndef WEFT_RUNTIME_SUPPORT_JSON_H
#define WEFT_RUNTIME_SUPPORT_JSON_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft::runtime {

struct JsonMember;

/// A parsed JSON value. Integers without fraction or exponent are kept
/// exactly (`isInteger`); objects keep their members in order.
struct JsonValue {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  bool isInteger = false;
  int64_t integer = 0;
  std::string string;
  std::vector<JsonValue> array;
  // Members as a struct, not std::pair: clang (the fuzzing build) rejects
  // libstdc++'s pair of a class that is still being defined.
  std::vector<JsonMember> object;

  /// The member `key` of an object, or nullptr.
  const JsonValue *find(std::string_view key) const;
};

/// An object's member, in the order of the text.
struct JsonMember {
  std::string key;
  JsonValue value;
};

/// Parses a complete JSON text; the error says what and at which byte.
Result<JsonValue> parseJson(std::string_view text);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_JSON_H
