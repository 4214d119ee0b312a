// The values a chat template computes with: Python's data model as Jinja
// exposes it (None, bool, int, float, str, list, dict, namespace, callables)
// plus Jinja's Undefined.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_VALUE_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_VALUE_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace weft::tokenizer::jinja {

class Value;
using ValueList = std::vector<Value>;

/// A dict that keeps insertion order, as Python's does (templates iterate
/// messages' and tools' keys, and tojson writes them in that order).
struct ValueDict {
  std::vector<std::pair<std::string, Value>> items;
  const Value *find(const std::string &key) const;
  void set(const std::string &key, Value value);
};

/// Positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
};

/// A callable throws TemplateError on failure.
using Function = std::function<Value(CallArgs &)>;

class Value {
public:
  enum class Kind {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    List,
    Dict,
    Namespace,
    Function
  };

  Value() = default;
  static Value undefined(std::string hint = "");
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(ValueList items = {});
  /// A list that Python would hold as a tuple: the same except for its repr
  /// and that it never equals a list.
  static Value tuple(ValueList items);
  static Value dict(ValueDict items = {});
  static Value makeNamespace(ValueDict items = {});
  static Value function(std::string name, Function fn);
  static Value fromJson(const nlohmann::ordered_json &json);

  Kind kind() const { return k; }
  bool isUndefined() const { return k == Kind::Undefined; }
  bool isNone() const { return k == Kind::None; }
  bool isBool() const { return k == Kind::Bool; }
  bool isInt() const { return k == Kind::Int; }
  bool isFloat() const { return k == Kind::Float; }
  /// int, float or bool: Python's numbers.Number.
  bool isNumber() const {
    return k == Kind::Int || k == Kind::Float || k == Kind::Bool;
  }
  bool isString() const { return k == Kind::String; }
  bool isList() const { return k == Kind::List; }
  bool isTuple() const { return k == Kind::List && tupleFlag; }
  bool isDict() const { return k == Kind::Dict; }
  bool isNamespace() const { return k == Kind::Namespace; }
  bool isFunction() const { return k == Kind::Function; }
  /// dict or namespace: both hold named items.
  bool hasItems() const { return k == Kind::Dict || k == Kind::Namespace; }

  bool asBool() const { return b; }
  int64_t asInt() const { return k == Kind::Bool ? (b ? 1 : 0) : i; }
  double asDouble() const {
    return k == Kind::Float ? d : static_cast<double>(asInt());
  }
  const std::string &asString() const { return *s; }
  ValueList &asList() const { return *l; }
  ValueDict &asDict() const { return *m; }
  const Function &asFunction() const { return *fn; }
  /// The name a callable was made under, or what an undefined stands for.
  const std::string &name() const { return nameOrHint; }

  /// Python's truth value (Undefined is false).
  bool truthy() const;
  /// Python's str(value); Undefined renders empty.
  std::string str() const;
  /// Python's repr(value).
  std::string repr() const;
  /// Python's type name, for error messages.
  std::string typeName() const;
  /// Python's ==, with Jinja's Undefined == Undefined.
  bool equals(const Value &other) const;
  /// Python's <, or throws TemplateError for types that don't order.
  bool less(const Value &other) const;
  /// The iteration Python's `for` does: list items, dict keys, string code
  /// points; Undefined iterates nothing. Throws for the rest.
  ValueList iterate() const;
  /// Python's json.dumps(value, ensure_ascii, indent, separators, sort_keys).
  std::string toJson(bool ensureAscii, int indent, const std::string &itemSep,
                     const std::string &keySep, bool sortKeys) const;

private:
  void dumpJson(std::string &out, bool ensureAscii, int indent, int depth,
                const std::string &itemSep, const std::string &keySep,
                bool sortKeys) const;

  Kind k = Kind::Undefined;
  bool b = false;
  bool tupleFlag = false;
  int64_t i = 0;
  double d = 0;
  std::shared_ptr<const std::string> s;
  std::shared_ptr<ValueList> l;
  std::shared_ptr<ValueDict> m;
  std::shared_ptr<const Function> fn;
  std::string nameOrHint;
};

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_VALUE_H
