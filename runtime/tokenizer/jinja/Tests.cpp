// Jinja's built-in tests, and Python's `in`.
#include "runtime/tokenizer/jinja/Builtins.h"

#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Text.h"

#include <cctype>
#include <cmath>
#include <functional>
#include <map>

namespace weft::tokenizer::jinja {
namespace {

using TestFn = std::function<bool(const Value &, CallArgs &)>;

bool divisible(const Value &v, const Value &n) {
  if (!v.isNumber() || !n.isNumber())
    throw TemplateError("divisibleby needs numbers");
  if (v.isFloat() || n.isFloat())
    return std::fmod(v.asDouble(), n.asDouble()) == 0;
  if (n.asInt() == 0)
    throw TemplateError("integer division or modulo by zero");
  return v.asInt() % n.asInt() == 0;
}

bool isCaseOf(const Value &v, bool upper) {
  std::string s = v.str();
  bool cased = false;
  for (char c : s) {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      cased = true;
      if (upper ? std::islower(static_cast<unsigned char>(c))
                : std::isupper(static_cast<unsigned char>(c)))
        return false;
    }
  }
  if (!isAscii(s))
    throw TemplateError("unsupported: case test of non-ASCII text");
  return cased;
}

const std::map<std::string, TestFn> &tests() {
  static const std::map<std::string, TestFn> table = [] {
    std::map<std::string, TestFn> t;
    auto unary = [](std::function<bool(const Value &)> f) -> TestFn {
      return [f](const Value &v, CallArgs &a) {
        ArgReader r(a, "test", {});
        return f(v);
      };
    };
    auto binary =
        [](std::function<bool(const Value &, const Value &)> f) -> TestFn {
      return [f](const Value &v, CallArgs &a) {
        ArgReader r(a, "test", {"other"});
        if (!r.get(0))
          throw TemplateError("the test needs an argument");
        return f(v, *r.get(0));
      };
    };
    t["defined"] = unary([](const Value &v) { return !v.isUndefined(); });
    t["undefined"] = unary([](const Value &v) { return v.isUndefined(); });
    t["none"] = unary([](const Value &v) { return v.isNone(); });
    t["boolean"] = unary([](const Value &v) { return v.isBool(); });
    t["true"] = unary([](const Value &v) { return v.isBool() && v.asBool(); });
    t["false"] =
        unary([](const Value &v) { return v.isBool() && !v.asBool(); });
    t["string"] = unary([](const Value &v) { return v.isString(); });
    t["number"] = unary([](const Value &v) { return v.isNumber(); });
    t["integer"] = unary([](const Value &v) { return v.isInt(); });
    t["float"] = unary([](const Value &v) { return v.isFloat(); });
    t["mapping"] = unary([](const Value &v) { return v.isDict(); });
    t["iterable"] = unary([](const Value &v) {
      return v.isUndefined() || v.isString() || v.isList() || v.isDict();
    });
    t["sequence"] = unary([](const Value &v) {
      return v.isUndefined() || v.isString() || v.isList() || v.isDict();
    });
    t["callable"] = unary([](const Value &v) { return v.isFunction(); });
    t["odd"] =
        unary([](const Value &v) { return !divisible(v, Value::integer(2)); });
    t["even"] =
        unary([](const Value &v) { return divisible(v, Value::integer(2)); });
    t["lower"] = unary([](const Value &v) { return isCaseOf(v, false); });
    t["upper"] = unary([](const Value &v) { return isCaseOf(v, true); });
    t["divisibleby"] = binary(divisible);
    t["eq"] =
        binary([](const Value &a, const Value &b) { return a.equals(b); });
    t["ne"] =
        binary([](const Value &a, const Value &b) { return !a.equals(b); });
    t["lt"] = binary([](const Value &a, const Value &b) { return a.less(b); });
    t["gt"] = binary([](const Value &a, const Value &b) { return b.less(a); });
    t["le"] = binary([](const Value &a, const Value &b) { return !b.less(a); });
    t["ge"] = binary([](const Value &a, const Value &b) { return !a.less(b); });
    t["in"] =
        binary([](const Value &a, const Value &b) { return contains(b, a); });
    t["sameas"] = binary([](const Value &a, const Value &b) {
      // Python's `is`: only None, bools and small ints are shared objects.
      bool shared = a.isNone() || a.isBool() ||
                    (a.isInt() && a.asInt() >= -5 && a.asInt() <= 256);
      return shared && a.kind() == b.kind() && a.equals(b);
    });
    t["filter"] = unary([](const Value &v) {
      return isKnownFilter(v.str()) || isOtherJinjaFilter(v.str());
    });
    t["test"] = unary([](const Value &v) {
      return isKnownTest(v.str()) || isOtherJinjaTest(v.str());
    });
    t["equalto"] = t["eq"];
    t["=="] = t["eq"];
    t["!="] = t["ne"];
    t["lessthan"] = t["lt"];
    t["<"] = t["lt"];
    t["greaterthan"] = t["gt"];
    t[">"] = t["gt"];
    t["<="] = t["le"];
    t[">="] = t["ge"];
    return t;
  }();
  return table;
}

} // namespace

bool contains(const Value &container, const Value &item) {
  if (container.isString()) {
    if (!item.isString())
      throw TemplateError(
          "'in <string>' requires string as left operand, not " +
          item.typeName());
    return container.asString().find(item.asString()) != std::string::npos;
  }
  if (container.isDict())
    return item.isString() && container.asDict().find(item.asString());
  if (container.isList() || container.isUndefined()) {
    for (const Value &v : container.iterate())
      if (v.equals(item))
        return true;
    return false;
  }
  throw TemplateError("argument of type '" + container.typeName() +
                      "' is not iterable");
}

bool isKnownTest(const std::string &name) { return tests().count(name) > 0; }

bool isOtherJinjaTest(const std::string &name) { return name == "escaped"; }

bool applyTest(const std::string &name, const Value &subject, CallArgs &args) {
  auto it = tests().find(name);
  if (it == tests().end())
    throw TemplateError("unsupported test '" + name + "'");
  return it->second(subject, args);
}

} // namespace weft::tokenizer::jinja
