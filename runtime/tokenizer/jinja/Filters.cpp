// Jinja's built-in filters, with transformers' tojson.
#include "runtime/tokenizer/jinja/Builtins.h"

#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>

namespace weft::tokenizer::jinja {
namespace {

using FilterFn = std::function<Value(const Value &, CallArgs &)>;

std::string caseOp(const Value &v, const std::string &op) {
  CallArgs none;
  return getAttribute(Value::string(v.str()), op).asFunction()(none).asString();
}

/// Jinja's title filter: capitalizes after `-`, whitespace and brackets.
std::string jinjaTitle(const std::string &text) {
  if (!isAscii(text))
    throw TemplateError("unsupported: title of non-ASCII text");
  std::string out = text;
  bool wordStart = true;
  for (char &c : out) {
    bool separator = std::isspace(static_cast<unsigned char>(c)) || c == '-' ||
                     c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      wordStart = true;
      continue;
    }
    c = static_cast<char>(wordStart
                              ? std::toupper(static_cast<unsigned char>(c))
                              : std::tolower(static_cast<unsigned char>(c)));
    wordStart = false;
  }
  return out;
}

int64_t length(const Value &v) {
  if (v.isUndefined())
    return 0;
  if (v.isString())
    return static_cast<int64_t>(codePointCount(v.asString()));
  if (v.isList())
    return static_cast<int64_t>(v.asList().size());
  if (v.isDict())
    return static_cast<int64_t>(v.asDict().items.size());
  throw TemplateError("object of type '" + v.typeName() + "' has no len()");
}

/// `item.a.b` as selectattr/map/sort read it (Jinja's make_attrgetter).
Value lookupPath(const Value &item, const std::string &path) {
  Value current = item;
  for (const std::string &part : pySplit(path, std::string("."), -1)) {
    bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    current = numeric ? getItem(current, Value::integer(std::stoll(part)))
                      : getItem(current, Value::string(part));
  }
  return current;
}

std::string escapeHtml(const std::string &text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&#34;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

std::optional<double> parsePythonFloat(const std::string &raw) {
  std::string text = pyStrip(raw, std::nullopt, true, true);
  std::string cleaned;
  for (char c : text)
    if (c != '_')
      cleaned += c;
  if (cleaned.empty())
    return std::nullopt;
  char *end = nullptr;
  double d = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size())
    return std::nullopt;
  return d;
}

std::optional<int64_t> parsePythonInt(const std::string &raw) {
  std::string text = pyStrip(raw, std::nullopt, true, true);
  size_t i = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
  if (i == text.size())
    return std::nullopt;
  std::string digits = text.substr(0, i);
  for (; i < text.size(); ++i) {
    if (text[i] == '_' && i > 0 &&
        std::isdigit(static_cast<unsigned char>(text[i - 1])))
      continue;
    if (!std::isdigit(static_cast<unsigned char>(text[i])))
      return std::nullopt;
    digits += text[i];
  }
  try {
    return std::stoll(digits);
  } catch (const std::exception &) {
    throw TemplateError("integer out of range: " + text);
  }
}

Value filterInt(const Value &v, CallArgs &args) {
  ArgReader r(args, "int", {"default", "base"});
  Value fallback = r.getOr(0, Value::integer(0));
  if (r.get(1) && r.get(1)->asInt() != 10)
    throw TemplateError("unsupported: int filter with a base other than 10");
  if (v.isInt() || v.isBool())
    return Value::integer(v.asInt());
  if (v.isFloat() && std::isfinite(v.asDouble()))
    return Value::integer(static_cast<int64_t>(std::trunc(v.asDouble())));
  if (v.isString()) {
    if (auto i = parsePythonInt(v.asString()))
      return Value::integer(*i);
    if (auto d = parsePythonFloat(v.asString()); d && std::isfinite(*d))
      return Value::integer(static_cast<int64_t>(std::trunc(*d)));
  }
  return fallback;
}

Value filterFloat(const Value &v, CallArgs &args) {
  ArgReader r(args, "float", {"default"});
  if (v.isNumber())
    return Value::floating(v.asDouble());
  if (v.isString())
    if (auto d = parsePythonFloat(v.asString()))
      return Value::floating(*d);
  return r.getOr(0, Value::floating(0.0));
}

Value filterToJson(const Value &v, CallArgs &args) {
  ArgReader r(args, "tojson",
              {"ensure_ascii", "indent", "separators", "sort_keys"});
  bool ensureAscii = r.getOr(0, Value::boolean(false)).truthy();
  Value indentV = r.getOr(1, Value::none());
  int indent = -1;
  if (indentV.isInt())
    indent = static_cast<int>(std::max<int64_t>(indentV.asInt(), 0));
  else if (!indentV.isNone())
    throw TemplateError("unsupported: tojson indent that is not an integer");
  std::string itemSep = indent >= 0 ? "," : ", ", keySep = ": ";
  Value seps = r.getOr(2, Value::none());
  if (!seps.isNone()) {
    if (!seps.isList() || seps.asList().size() != 2 ||
        !seps.asList()[0].isString() || !seps.asList()[1].isString())
      throw TemplateError("tojson separators must be two strings");
    itemSep = seps.asList()[0].asString();
    keySep = seps.asList()[1].asString();
  }
  bool sortKeys = r.getOr(3, Value::boolean(false)).truthy();
  return Value::string(
      v.toJson(ensureAscii, indent, itemSep, keySep, sortKeys));
}

Value filterIndent(const Value &v, CallArgs &args) {
  ArgReader r(args, "indent", {"width", "first", "blank"});
  Value width = r.getOr(0, Value::integer(4));
  std::string indention =
      width.isString() ? width.asString()
                       : std::string(static_cast<size_t>(width.asInt()), ' ');
  bool first = r.getOr(1, Value::boolean(false)).truthy();
  bool blank = r.getOr(2, Value::boolean(false)).truthy();
  std::vector<std::string> lines = pySplitLines(v.str() + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i == 0) {
      out = lines[0];
      continue;
    }
    out += "\n";
    if (blank || !lines[i].empty())
      out += indention;
    out += lines[i];
  }
  return Value::string(first ? indention + out : out);
}

Value filterJoin(const Value &v, CallArgs &args) {
  ArgReader r(args, "join", {"d", "attribute"});
  std::string sep = r.getOr(0, Value::string("")).str();
  const Value *attribute = r.get(1);
  std::string out;
  ValueList items = v.iterate();
  for (size_t i = 0; i < items.size(); ++i) {
    Value item = attribute && !attribute->isNone()
                     ? lookupPath(items[i], attribute->str())
                     : items[i];
    out += (i ? sep : "") + item.str();
  }
  return Value::string(out);
}

bool runTest(const std::string &test, const Value &item,
             const std::vector<Value> &testArgs) {
  if (!isKnownTest(test))
    throw TemplateError("unsupported test '" + test + "'");
  CallArgs args;
  args.positional = testArgs;
  return applyTest(test, item, args);
}

/// select/reject/selectattr/rejectattr.
Value filterSelect(const Value &v, CallArgs &args, bool byAttribute,
                   bool keep) {
  std::vector<Value> rest = args.positional;
  if (!args.named.empty())
    throw TemplateError("unexpected keyword argument to a select filter");
  std::string attribute;
  if (byAttribute) {
    if (rest.empty())
      throw TemplateError("selectattr needs an attribute name");
    attribute = rest.front().str();
    rest.erase(rest.begin());
  }
  std::optional<std::string> test;
  if (!rest.empty()) {
    test = rest.front().str();
    rest.erase(rest.begin());
  }
  ValueList out;
  for (const Value &item : v.iterate()) {
    Value subject = byAttribute ? lookupPath(item, attribute) : item;
    bool passes = test ? runTest(*test, subject, rest) : subject.truthy();
    if (passes == keep)
      out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filterMap(const Value &v, CallArgs &args) {
  ValueList out;
  const Value *attribute = nullptr;
  const Value *fallback = nullptr;
  for (const auto &[key, value] : args.named) {
    if (key == "attribute")
      attribute = &value;
    else if (key == "default")
      fallback = &value;
  }
  if (attribute) {
    for (const Value &item : v.iterate()) {
      Value got = lookupPath(item, attribute->str());
      out.push_back(got.isUndefined() && fallback ? *fallback : got);
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty())
    throw TemplateError("map needs a filter name or attribute=");
  std::string filter = args.positional.front().str();
  if (!isKnownFilter(filter))
    throw TemplateError("unsupported filter '" + filter + "'");
  for (const Value &item : v.iterate()) {
    CallArgs inner;
    inner.positional.assign(args.positional.begin() + 1, args.positional.end());
    inner.named = args.named;
    out.push_back(applyFilter(filter, item, inner));
  }
  return Value::list(std::move(out));
}

/// The sort key Jinja uses: strings lower-cased unless case-sensitive.
Value sortKey(const Value &v, bool caseSensitive) {
  if (!caseSensitive && v.isString())
    return Value::string(caseOp(v, "lower"));
  return v;
}

Value filterSort(const Value &v, CallArgs &args) {
  ArgReader r(args, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = r.getOr(0, Value::boolean(false)).truthy();
  bool caseSensitive = r.getOr(1, Value::boolean(false)).truthy();
  Value attribute = r.getOr(2, Value::none());
  ValueList items = v.iterate();
  auto key = [&](const Value &item) {
    return sortKey(attribute.isNone() ? item
                                      : lookupPath(item, attribute.str()),
                   caseSensitive);
  };
  std::stable_sort(items.begin(), items.end(),
                   [&](const Value &a, const Value &b) {
                     return reverse ? key(b).less(key(a)) : key(a).less(key(b));
                   });
  return Value::list(std::move(items));
}

Value filterDictSort(const Value &v, CallArgs &args) {
  ArgReader r(args, "dictsort", {"case_sensitive", "by", "reverse"});
  bool caseSensitive = r.getOr(0, Value::boolean(false)).truthy();
  bool byValue = r.getOr(1, Value::string("key")).str() == "value";
  bool reverse = r.getOr(2, Value::boolean(false)).truthy();
  if (!v.isDict())
    throw TemplateError("dictsort needs a dict, not " + v.typeName());
  ValueList pairs;
  for (const auto &[key, value] : v.asDict().items)
    pairs.push_back(Value::tuple({Value::string(key), value}));
  auto key = [&](const Value &pair) {
    return sortKey(pair.asList()[byValue ? 1 : 0], caseSensitive);
  };
  std::stable_sort(pairs.begin(), pairs.end(),
                   [&](const Value &a, const Value &b) {
                     return reverse ? key(b).less(key(a)) : key(a).less(key(b));
                   });
  return Value::list(std::move(pairs));
}

Value filterUnique(const Value &v, CallArgs &args) {
  ArgReader r(args, "unique", {"case_sensitive", "attribute"});
  bool caseSensitive = r.getOr(0, Value::boolean(false)).truthy();
  Value attribute = r.getOr(1, Value::none());
  ValueList out, seen;
  for (const Value &item : v.iterate()) {
    Value key =
        sortKey(attribute.isNone() ? item : lookupPath(item, attribute.str()),
                caseSensitive);
    if (std::none_of(seen.begin(), seen.end(),
                     [&](const Value &s) { return s.equals(key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value filterMinMax(const Value &v, CallArgs &args, bool wantMax) {
  ArgReader r(args, wantMax ? "max" : "min", {"case_sensitive", "attribute"});
  bool caseSensitive = r.getOr(0, Value::boolean(false)).truthy();
  Value attribute = r.getOr(1, Value::none());
  ValueList items = v.iterate();
  if (items.empty())
    return Value::undefined("no aggregated item, sequence was empty");
  auto key = [&](const Value &item) {
    return sortKey(attribute.isNone() ? item
                                      : lookupPath(item, attribute.str()),
                   caseSensitive);
  };
  Value best = items[0];
  for (const Value &item : items)
    if (wantMax ? key(best).less(key(item)) : key(item).less(key(best)))
      best = item;
  return best;
}

Value filterRound(const Value &v, CallArgs &args) {
  ArgReader r(args, "round", {"precision", "method"});
  int64_t precision = r.getOr(0, Value::integer(0)).asInt();
  std::string method = r.getOr(1, Value::string("common")).str();
  if (!v.isNumber())
    throw TemplateError("round needs a number, not " + v.typeName());
  if (method == "common" && !v.isFloat())
    return Value::integer(v.asInt());
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.asDouble() * scale;
  if (method == "common")
    x = std::nearbyint(x);
  else if (method == "ceil")
    x = std::ceil(x);
  else if (method == "floor")
    x = std::floor(x);
  else
    throw TemplateError("method must be common, ceil or floor");
  return Value::floating(x / scale);
}

Value filterSum(const Value &v, CallArgs &args) {
  ArgReader r(args, "sum", {"attribute", "start"});
  Value attribute = r.getOr(0, Value::none());
  Value total = r.getOr(1, Value::integer(0));
  for (const Value &item : v.iterate()) {
    Value x = attribute.isNone() ? item : lookupPath(item, attribute.str());
    if (!x.isNumber() || !total.isNumber())
      throw TemplateError("unsupported operand types for +: '" +
                          total.typeName() + "' and '" + x.typeName() + "'");
    total = total.isFloat() || x.isFloat()
                ? Value::floating(total.asDouble() + x.asDouble())
                : Value::integer(total.asInt() + x.asInt());
  }
  return total;
}

Value filterFirstLast(const Value &v, bool first) {
  if (v.isDict()) {
    if (v.asDict().items.empty())
      return Value::undefined("no item, sequence was empty");
    return Value::string(first ? v.asDict().items.front().first
                               : v.asDict().items.back().first);
  }
  ValueList items = v.iterate();
  if (items.empty())
    return Value::undefined("no item, sequence was empty");
  return first ? items.front() : items.back();
}

Value filterReverse(const Value &v) {
  if (v.isString()) {
    std::u32string cps = decodeUtf8(v.asString());
    std::reverse(cps.begin(), cps.end());
    return Value::string(encodeUtf8(cps));
  }
  ValueList items = v.iterate();
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value filterItems(const Value &v) {
  if (v.isUndefined())
    return Value::list();
  if (!v.isDict())
    throw TemplateError("Can only get item pairs from a mapping.");
  ValueList pairs;
  for (const auto &[key, value] : v.asDict().items)
    pairs.push_back(Value::tuple({Value::string(key), value}));
  return Value::list(std::move(pairs));
}

Value noArgs(const std::string &name, CallArgs &args, Value result) {
  ArgReader r(args, name, {});
  return result;
}

const std::map<std::string, FilterFn> &filters() {
  static const std::map<std::string, FilterFn> table = [] {
    std::map<std::string, FilterFn> t;
    t["abs"] = [](const Value &v, CallArgs &a) {
      ArgReader r(a, "abs", {});
      if (v.isFloat())
        return Value::floating(std::fabs(v.asDouble()));
      if (!v.isNumber())
        throw TemplateError("bad operand type for abs(): '" + v.typeName() +
                            "'");
      return Value::integer(std::llabs(v.asInt()));
    };
    t["attr"] = [](const Value &v, CallArgs &a) {
      ArgReader r(a, "attr", {"name"});
      return getAttribute(v, r.getOr(0, Value::string("")).str());
    };
    t["capitalize"] = [](const Value &v, CallArgs &a) {
      return noArgs("capitalize", a, Value::string(caseOp(v, "capitalize")));
    };
    t["lower"] = [](const Value &v, CallArgs &a) {
      return noArgs("lower", a, Value::string(caseOp(v, "lower")));
    };
    t["upper"] = [](const Value &v, CallArgs &a) {
      return noArgs("upper", a, Value::string(caseOp(v, "upper")));
    };
    t["title"] = [](const Value &v, CallArgs &a) {
      return noArgs("title", a, Value::string(jinjaTitle(v.str())));
    };
    t["length"] = [](const Value &v, CallArgs &a) {
      return noArgs("length", a, Value::integer(length(v)));
    };
    t["count"] = t["length"];
    t["default"] = [](const Value &v, CallArgs &a) {
      ArgReader r(a, "default", {"default_value", "boolean"});
      bool boolean = r.getOr(1, Value::boolean(false)).truthy();
      if (v.isUndefined() || (boolean && !v.truthy()))
        return r.getOr(0, Value::string(""));
      return v;
    };
    t["d"] = t["default"];
    t["dictsort"] = filterDictSort;
    t["escape"] = [](const Value &v, CallArgs &a) {
      return noArgs("escape", a, Value::string(escapeHtml(v.str())));
    };
    t["e"] = t["escape"];
    t["first"] = [](const Value &v, CallArgs &a) {
      return noArgs("first", a, filterFirstLast(v, true));
    };
    t["last"] = [](const Value &v, CallArgs &a) {
      return noArgs("last", a, filterFirstLast(v, false));
    };
    t["float"] = filterFloat;
    t["indent"] = filterIndent;
    t["int"] = filterInt;
    t["items"] = [](const Value &v, CallArgs &a) {
      return noArgs("items", a, filterItems(v));
    };
    t["join"] = filterJoin;
    t["list"] = [](const Value &v, CallArgs &a) {
      return noArgs("list", a, Value::list(v.iterate()));
    };
    t["map"] = filterMap;
    t["max"] = [](const Value &v, CallArgs &a) {
      return filterMinMax(v, a, true);
    };
    t["min"] = [](const Value &v, CallArgs &a) {
      return filterMinMax(v, a, false);
    };
    t["reject"] = [](const Value &v, CallArgs &a) {
      return filterSelect(v, a, false, false);
    };
    t["rejectattr"] = [](const Value &v, CallArgs &a) {
      return filterSelect(v, a, true, false);
    };
    t["select"] = [](const Value &v, CallArgs &a) {
      return filterSelect(v, a, false, true);
    };
    t["selectattr"] = [](const Value &v, CallArgs &a) {
      return filterSelect(v, a, true, true);
    };
    t["replace"] = [](const Value &v, CallArgs &a) {
      ArgReader r(a, "replace", {"old", "new", "count"});
      if (!r.get(0) || !r.get(1))
        throw TemplateError("replace needs old and new strings");
      Value count = r.getOr(2, Value::none());
      return Value::string(pyReplace(v.str(), r.get(0)->str(), r.get(1)->str(),
                                     count.isNone() ? -1 : count.asInt()));
    };
    t["reverse"] = [](const Value &v, CallArgs &a) {
      return noArgs("reverse", a, filterReverse(v));
    };
    t["round"] = filterRound;
    t["safe"] = [](const Value &v, CallArgs &a) {
      return noArgs("safe", a, v);
    };
    t["sort"] = filterSort;
    t["string"] = [](const Value &v, CallArgs &a) {
      return noArgs("string", a, Value::string(v.str()));
    };
    t["sum"] = filterSum;
    t["tojson"] = filterToJson;
    t["trim"] = [](const Value &v, CallArgs &a) {
      ArgReader r(a, "trim", {"chars"});
      Value chars = r.getOr(0, Value::none());
      return Value::string(pyStrip(
          v.str(), chars.isNone() ? std::nullopt : std::optional(chars.str()),
          true, true));
    };
    t["unique"] = filterUnique;
    return t;
  }();
  return table;
}

} // namespace

bool isKnownFilter(const std::string &name) {
  return filters().count(name) > 0;
}

bool isOtherJinjaFilter(const std::string &name) {
  static const std::set<std::string> names = {
      "batch",  "center",    "filesizeformat", "forceescape",
      "format", "groupby",   "pprint",         "random",
      "slice",  "striptags", "truncate",       "urlencode",
      "urlize", "wordcount", "wordwrap",       "xmlattr"};
  return names.count(name) > 0;
}

Value applyFilter(const std::string &name, const Value &subject,
                  CallArgs &args) {
  auto it = filters().find(name);
  if (it == filters().end())
    throw TemplateError("unsupported filter '" + name + "'");
  return it->second(subject, args);
}

} // namespace weft::tokenizer::jinja
