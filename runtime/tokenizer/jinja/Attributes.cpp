// Attribute, item and slice access, and the Python methods of str, dict and
// list that chat templates call.
#include "runtime/tokenizer/jinja/Builtins.h"

#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Text.h"

#include <algorithm>
#include <set>

namespace weft::tokenizer::jinja {

ArgReader::ArgReader(CallArgs &args, std::string function,
                     std::vector<std::string> names, bool variadic)
    : args(args), function(std::move(function)), names(std::move(names)) {
  if (!variadic && args.positional.size() > this->names.size())
    throw TemplateError(this->function + "() takes at most " +
                        std::to_string(this->names.size()) + " arguments (" +
                        std::to_string(args.positional.size()) + " given)");
  for (const auto &[key, value] : args.named) {
    auto it = std::find(this->names.begin(), this->names.end(), key);
    if (it == this->names.end())
      throw TemplateError(this->function +
                          "() got an unexpected keyword "
                          "argument '" +
                          key + "'");
    if (static_cast<size_t>(it - this->names.begin()) < args.positional.size())
      throw TemplateError(this->function +
                          "() got multiple values for "
                          "argument '" +
                          key + "'");
  }
}

const Value *ArgReader::get(size_t index) const {
  if (index < args.positional.size() && index < names.size())
    return &args.positional[index];
  if (index >= names.size())
    return nullptr;
  for (const auto &[key, value] : args.named)
    if (key == names[index])
      return &value;
  return nullptr;
}

Value ArgReader::getOr(size_t index, Value fallback) const {
  const Value *v = get(index);
  return v ? *v : fallback;
}

std::vector<Value> ArgReader::rest() const {
  if (args.positional.size() <= names.size())
    return {};
  return std::vector<Value>(args.positional.begin() + names.size(),
                            args.positional.end());
}

namespace {

std::string requireString(const Value &v, const std::string &what) {
  if (!v.isString())
    throw TemplateError(what + " must be str, not " + v.typeName());
  return v.asString();
}

std::optional<std::string> optionalChars(const ArgReader &r, size_t index,
                                         const std::string &what) {
  const Value *v = r.get(index);
  if (!v || v->isNone())
    return std::nullopt;
  return requireString(*v, what);
}

/// Python's str.upper/lower/title/capitalize, for ASCII text only: full
/// Unicode case mapping is out of scope, and a wrong prompt is worse than
/// a refusal.
std::string asciiCase(const std::string &text, const std::string &op) {
  if (!isAscii(text))
    throw TemplateError("unsupported: " + op + " of non-ASCII text");
  std::string out = text;
  if (op == "upper") {
    for (char &c : out)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  } else if (op == "lower") {
    for (char &c : out)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  } else if (op == "capitalize") {
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<char>(
          i == 0 ? std::toupper(static_cast<unsigned char>(out[i]))
                 : std::tolower(static_cast<unsigned char>(out[i])));
  } else { // Python's str.title
    bool previousCased = false;
    for (char &c : out) {
      bool alpha = std::isalpha(static_cast<unsigned char>(c));
      if (alpha)
        c = static_cast<char>(
            previousCased ? std::tolower(static_cast<unsigned char>(c))
                          : std::toupper(static_cast<unsigned char>(c)));
      previousCased = alpha;
    }
  }
  return out;
}

bool matchesAffix(const std::string &text, const Value &affix, bool prefix) {
  std::vector<Value> options =
      affix.isList() ? affix.asList() : std::vector<Value>{affix};
  for (const Value &option : options) {
    std::string a = requireString(option, prefix ? "startswith argument"
                                                 : "endswith argument");
    if (a.size() > text.size())
      continue;
    if (prefix ? text.compare(0, a.size(), a) == 0
               : text.compare(text.size() - a.size(), a.size(), a) == 0)
      return true;
  }
  return false;
}

Value stringList(const std::vector<std::string> &parts) {
  ValueList items;
  for (const auto &p : parts)
    items.push_back(Value::string(p));
  return Value::list(std::move(items));
}

Value callStringMethod(const std::string &self, const std::string &name,
                       CallArgs &args) {
  std::string fn = "str." + name;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgReader r(args, fn, {"chars"});
    return Value::string(pyStrip(self, optionalChars(r, 0, "chars"),
                                 name != "rstrip", name != "lstrip"));
  }
  if (name == "split") {
    ArgReader r(args, fn, {"sep", "maxsplit"});
    Value max = r.getOr(1, Value::integer(-1));
    return stringList(pySplit(self, optionalChars(r, 0, "sep"), max.asInt()));
  }
  if (name == "splitlines") {
    ArgReader r(args, fn, {});
    return stringList(pySplitLines(self));
  }
  if (name == "startswith" || name == "endswith") {
    ArgReader r(args, fn, {"prefix"});
    if (!r.get(0))
      throw TemplateError(fn + "() takes at least 1 argument (0 given)");
    return Value::boolean(matchesAffix(self, *r.get(0), name == "startswith"));
  }
  if (name == "upper" || name == "lower" || name == "title" ||
      name == "capitalize") {
    ArgReader r(args, fn, {});
    return Value::string(asciiCase(self, name));
  }
  if (name == "replace") {
    ArgReader r(args, fn, {"old", "new", "count"});
    if (!r.get(0) || !r.get(1))
      throw TemplateError(fn + "() takes at least 2 arguments");
    return Value::string(pyReplace(self, requireString(*r.get(0), "old"),
                                   requireString(*r.get(1), "new"),
                                   r.getOr(2, Value::integer(-1)).asInt()));
  }
  if (name == "join") {
    ArgReader r(args, fn, {"iterable"});
    if (!r.get(0))
      throw TemplateError(fn + "() takes exactly one argument (0 given)");
    std::string out;
    ValueList items = r.get(0)->iterate();
    for (size_t i = 0; i < items.size(); ++i)
      out += (i ? self : "") + requireString(items[i], "sequence item");
    return Value::string(out);
  }
  throw TemplateError("unsupported method '" + fn + "'");
}

Value callDictMethod(const Value &self, const std::string &name,
                     CallArgs &args) {
  std::string fn = "dict." + name;
  const ValueDict &dict = self.asDict();
  if (name == "get") {
    ArgReader r(args, fn, {"key", "default"});
    if (!r.get(0))
      throw TemplateError(fn + "() takes at least 1 argument (0 given)");
    const Value *found =
        r.get(0)->isString() ? dict.find(r.get(0)->asString()) : nullptr;
    return found ? *found : r.getOr(1, Value::none());
  }
  ArgReader r(args, fn, {});
  ValueList out;
  for (const auto &[key, value] : dict.items) {
    if (name == "items")
      out.push_back(Value::tuple({Value::string(key), value}));
    else if (name == "keys")
      out.push_back(Value::string(key));
    else
      out.push_back(value);
  }
  return Value::list(std::move(out));
}

const std::set<std::string> &pythonStrMethods() {
  static const std::set<std::string> names = {
      "capitalize",   "casefold",     "center",    "count",     "encode",
      "endswith",     "expandtabs",   "find",      "format",    "format_map",
      "index",        "isalnum",      "isalpha",   "isascii",   "isdecimal",
      "isdigit",      "isidentifier", "islower",   "isnumeric", "isprintable",
      "isspace",      "istitle",      "isupper",   "join",      "ljust",
      "lower",        "lstrip",       "maketrans", "partition", "removeprefix",
      "removesuffix", "replace",      "rfind",     "rindex",    "rjust",
      "rpartition",   "rsplit",       "rstrip",    "split",     "splitlines",
      "startswith",   "strip",        "swapcase",  "title",     "translate",
      "upper",        "zfill"};
  return names;
}

/// A method jinja2's ImmutableSandboxedEnvironment refuses to call, because
/// it would modify its list or dict.
bool isMutatingMethod(const Value &obj, const std::string &name) {
  static const std::set<std::string> listMethods = {
      "append", "extend", "insert", "pop",
      "remove", "clear",  "sort",   "reverse"};
  static const std::set<std::string> dictMethods = {"clear", "pop", "popitem",
                                                    "setdefault", "update"};
  return (obj.isList() && listMethods.count(name)) ||
         (obj.isDict() && dictMethods.count(name));
}

Value unsafeMethod(const Value &obj, const std::string &name) {
  std::string what = "access to attribute '" + name + "' of '" +
                     obj.typeName() + "' object is unsafe";
  return Value::function(
      obj.typeName() + "." + name,
      [what](CallArgs &) -> Value { throw TemplateError(what); });
}

/// The bound method `obj.name`, or an undefined value if `obj` has none.
Value methodOf(const Value &obj, const std::string &name) {
  if (obj.isString() && pythonStrMethods().count(name)) {
    std::string self = obj.asString();
    return Value::function("str." + name, [self, name](CallArgs &args) {
      return callStringMethod(self, name, args);
    });
  }
  if (obj.isDict() && (name == "get" || name == "items" || name == "keys" ||
                       name == "values")) {
    return Value::function("dict." + name, [obj, name](CallArgs &args) {
      return callDictMethod(obj, name, args);
    });
  }
  if (isMutatingMethod(obj, name))
    return unsafeMethod(obj, name);
  if ((obj.isDict() && name == "copy") ||
      (obj.isList() &&
       (name == "index" || name == "count" || name == "copy"))) {
    std::string fn = obj.typeName() + "." + name;
    return Value::function(fn, [fn](CallArgs &) -> Value {
      throw TemplateError("unsupported method '" + fn + "'");
    });
  }
  return Value::undefined();
}

std::string undefinedAttributeHint(const Value &obj, const std::string &name) {
  std::string hint = "'";
  hint += obj.typeName();
  hint += " object' has no attribute '";
  hint += name;
  return hint + "'";
}

[[noreturn]] void failOnUndefined(const Value &obj) {
  std::string hint = obj.name().empty() ? "value" : obj.name();
  throw TemplateError("undefined value used: " + hint);
}

} // namespace

Value getAttribute(const Value &obj, const std::string &name) {
  if (obj.isUndefined())
    failOnUndefined(obj);
  Value method = methodOf(obj, name);
  if (!method.isUndefined())
    return method;
  if (obj.hasItems()) {
    if (const Value *found = obj.asDict().find(name))
      return *found;
  }
  return Value::undefined(undefinedAttributeHint(obj, name));
}

static int64_t normalizeIndex(int64_t index, size_t size) {
  return index < 0 ? index + static_cast<int64_t>(size) : index;
}

Value getItem(const Value &obj, const Value &key) {
  if (obj.isUndefined())
    failOnUndefined(obj);
  if (obj.hasItems() && key.isString()) {
    if (const Value *found = obj.asDict().find(key.asString()))
      return *found;
    return getAttribute(obj, key.asString());
  }
  bool intKey = key.isInt() || key.isBool();
  if (obj.isList() && intKey) {
    int64_t i = normalizeIndex(key.asInt(), obj.asList().size());
    if (i >= 0 && i < static_cast<int64_t>(obj.asList().size()))
      return obj.asList()[i];
  } else if (obj.isString() && intKey) {
    std::u32string cps = decodeUtf8(obj.asString());
    int64_t i = normalizeIndex(key.asInt(), cps.size());
    if (i >= 0 && i < static_cast<int64_t>(cps.size()))
      return Value::string(encodeUtf8(cps.substr(i, 1)));
  } else if (key.isString()) {
    return getAttribute(obj, key.asString());
  }
  std::string hint = "'";
  hint += obj.typeName();
  hint += " object' has no item ";
  return Value::undefined(hint + key.repr());
}

Value getSlice(const Value &obj, const Value &startV, const Value &stopV,
               const Value &stepV) {
  if (obj.isUndefined())
    failOnUndefined(obj);
  auto given = [](const Value &v) { return !v.isUndefined() && !v.isNone(); };
  int64_t step = given(stepV) ? stepV.asInt() : 1;
  if (step == 0)
    throw TemplateError("slice step cannot be zero");
  std::u32string cps;
  size_t size;
  if (obj.isString()) {
    cps = decodeUtf8(obj.asString());
    size = cps.size();
  } else if (obj.isList()) {
    size = obj.asList().size();
  } else {
    throw TemplateError("'" + obj.typeName() + "' object is not subscriptable");
  }
  int64_t n = static_cast<int64_t>(size);
  auto clamp = [&](const Value &v, int64_t fallback) {
    if (!given(v))
      return fallback;
    int64_t i = v.asInt();
    if (i < 0)
      i += n;
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? n : n - 1;
    return std::clamp(i, lo, hi);
  };
  int64_t start = clamp(startV, step > 0 ? 0 : n - 1);
  int64_t stop = clamp(stopV, step > 0 ? n : -1);
  std::vector<int64_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
    picks.push_back(i);
  if (obj.isString()) {
    std::u32string out;
    for (int64_t i : picks)
      out += cps[i];
    return Value::string(encodeUtf8(out));
  }
  ValueList out;
  for (int64_t i : picks)
    out.push_back(obj.asList()[i]);
  return Value::list(std::move(out));
}

} // namespace weft::tokenizer::jinja
