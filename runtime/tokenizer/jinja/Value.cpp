// The values a chat template computes with.
#include "runtime/tokenizer/jinja/Value.h"

#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Text.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace weft::tokenizer::jinja {

const Value *ValueDict::find(const std::string &key) const {
  for (const auto &[k, v] : items)
    if (k == key)
      return &v;
  return nullptr;
}

void ValueDict::set(const std::string &key, Value value) {
  for (auto &[k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(key, std::move(value));
}

Value Value::undefined(std::string hint) {
  Value v;
  v.nameOrHint = std::move(hint);
  return v;
}

Value Value::none() {
  Value v;
  v.k = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.k = Kind::Bool;
  v.b = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.k = Kind::Int;
  v.i = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.k = Kind::Float;
  v.d = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.k = Kind::String;
  v.s = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::list(ValueList items) {
  Value v;
  v.k = Kind::List;
  v.l = std::make_shared<ValueList>(std::move(items));
  return v;
}

Value Value::tuple(ValueList items) {
  Value v = list(std::move(items));
  v.tupleFlag = true;
  return v;
}

Value Value::dict(ValueDict items) {
  Value v;
  v.k = Kind::Dict;
  v.m = std::make_shared<ValueDict>(std::move(items));
  return v;
}

Value Value::makeNamespace(ValueDict items) {
  Value v = dict(std::move(items));
  v.k = Kind::Namespace;
  return v;
}

Value Value::function(std::string name, Function fn) {
  Value v;
  v.k = Kind::Function;
  v.fn = std::make_shared<const Function>(std::move(fn));
  v.nameOrHint = std::move(name);
  return v;
}

Value Value::fromJson(const nlohmann::ordered_json &json) {
  switch (json.type()) {
  case nlohmann::ordered_json::value_t::null:
    return none();
  case nlohmann::ordered_json::value_t::boolean:
    return boolean(json.get<bool>());
  case nlohmann::ordered_json::value_t::number_integer:
    return integer(json.get<int64_t>());
  case nlohmann::ordered_json::value_t::number_unsigned:
    if (json.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw TemplateError("unsupported: an integer above 2^63 in the input");
    return integer(static_cast<int64_t>(json.get<uint64_t>()));
  case nlohmann::ordered_json::value_t::number_float:
    return floating(json.get<double>());
  case nlohmann::ordered_json::value_t::string:
    return string(json.get<std::string>());
  case nlohmann::ordered_json::value_t::array: {
    ValueList items;
    for (const auto &item : json)
      items.push_back(fromJson(item));
    return list(std::move(items));
  }
  case nlohmann::ordered_json::value_t::object: {
    ValueDict items;
    for (const auto &[key, item] : json.items())
      items.items.emplace_back(key, fromJson(item));
    return dict(std::move(items));
  }
  default:
    throw TemplateError("unsupported JSON value in the template's input");
  }
}

bool Value::truthy() const {
  switch (k) {
  case Kind::Undefined:
  case Kind::None:
    return false;
  case Kind::Bool:
    return b;
  case Kind::Int:
    return i != 0;
  case Kind::Float:
    return d != 0;
  case Kind::String:
    return !s->empty();
  case Kind::List:
    return !l->empty();
  case Kind::Dict:
    return !m->items.empty();
  default:
    return true;
  }
}

std::string Value::str() const {
  switch (k) {
  case Kind::Undefined:
    return "";
  case Kind::String:
    return *s;
  default:
    return repr();
  }
}

std::string Value::repr() const {
  switch (k) {
  case Kind::Undefined:
    return "Undefined";
  case Kind::None:
    return "None";
  case Kind::Bool:
    return b ? "True" : "False";
  case Kind::Int:
    return std::to_string(i);
  case Kind::Float:
    return pyFloatRepr(d);
  case Kind::String:
    return pyStrRepr(*s);
  case Kind::List: {
    std::string out = tupleFlag ? "(" : "[";
    for (size_t n = 0; n < l->size(); ++n)
      out += (n ? ", " : "") + (*l)[n].repr();
    if (tupleFlag)
      return out + (l->size() == 1 ? ",)" : ")");
    return out + "]";
  }
  case Kind::Dict:
  case Kind::Namespace: {
    std::string out = k == Kind::Namespace ? "<Namespace {" : "{";
    for (size_t n = 0; n < m->items.size(); ++n)
      out += (n ? ", " : "") + pyStrRepr(m->items[n].first) + ": " +
             m->items[n].second.repr();
    return out + (k == Kind::Namespace ? "}>" : "}");
  }
  case Kind::Function:
    return "<function " + nameOrHint + ">";
  }
  return "";
}

std::string Value::typeName() const {
  switch (k) {
  case Kind::Undefined:
    return "Undefined";
  case Kind::None:
    return "NoneType";
  case Kind::Bool:
    return "bool";
  case Kind::Int:
    return "int";
  case Kind::Float:
    return "float";
  case Kind::String:
    return "str";
  case Kind::List:
    return "list";
  case Kind::Dict:
    return "dict";
  case Kind::Namespace:
    return "Namespace";
  case Kind::Function:
    return "function";
  }
  return "object";
}

bool Value::equals(const Value &other) const {
  if (isNumber() && other.isNumber()) {
    if (k != Kind::Float && other.k != Kind::Float)
      return asInt() == other.asInt();
    return asDouble() == other.asDouble();
  }
  if (k != other.k)
    return false;
  switch (k) {
  case Kind::Undefined:
  case Kind::None:
    return true;
  case Kind::String:
    return *s == *other.s;
  case Kind::List:
    if (tupleFlag != other.tupleFlag || l->size() != other.l->size())
      return false;
    for (size_t n = 0; n < l->size(); ++n)
      if (!(*l)[n].equals((*other.l)[n]))
        return false;
    return true;
  case Kind::Dict:
    if (m->items.size() != other.m->items.size())
      return false;
    for (const auto &[key, value] : m->items) {
      const Value *theirs = other.m->find(key);
      if (!theirs || !value.equals(*theirs))
        return false;
    }
    return true;
  case Kind::Namespace:
    return m == other.m;
  case Kind::Function:
    return fn == other.fn;
  default:
    return false;
  }
}

bool Value::less(const Value &other) const {
  if (isNumber() && other.isNumber()) {
    if (k != Kind::Float && other.k != Kind::Float)
      return asInt() < other.asInt();
    return asDouble() < other.asDouble();
  }
  if (isString() && other.isString())
    return *s < *other.s; // UTF-8 byte order is code point order.
  if (isList() && other.isList()) {
    size_t n = std::min(l->size(), other.l->size());
    for (size_t j = 0; j < n; ++j) {
      if (!(*l)[j].equals((*other.l)[j]))
        return (*l)[j].less((*other.l)[j]);
    }
    return l->size() < other.l->size();
  }
  throw TemplateError("'<' not supported between instances of '" + typeName() +
                      "' and '" + other.typeName() + "'");
}

ValueList Value::iterate() const {
  switch (k) {
  case Kind::Undefined:
    return {};
  case Kind::List:
    return *l;
  case Kind::Dict: {
    ValueList keys;
    for (const auto &item : m->items)
      keys.push_back(string(item.first));
    return keys;
  }
  case Kind::String: {
    ValueList chars;
    for (char32_t c : decodeUtf8(*s)) {
      std::string one;
      appendUtf8(one, c);
      chars.push_back(string(std::move(one)));
    }
    return chars;
  }
  default:
    throw TemplateError("'" + typeName() + "' object is not iterable");
  }
}

static void dumpJsonString(std::string &out, const std::string &text,
                           bool ensureAscii) {
  out += '"';
  for (char32_t c : decodeUtf8(text)) {
    switch (c) {
    case '"':
      out += "\\\"";
      continue;
    case '\\':
      out += "\\\\";
      continue;
    case '\n':
      out += "\\n";
      continue;
    case '\r':
      out += "\\r";
      continue;
    case '\t':
      out += "\\t";
      continue;
    case '\b':
      out += "\\b";
      continue;
    case '\f':
      out += "\\f";
      continue;
    default:
      break;
    }
    char buf[16];
    if (c < 0x20 || (ensureAscii && c >= 0x7F && c < 0x10000)) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else if (ensureAscii && c >= 0x10000) {
      unsigned v = static_cast<unsigned>(c) - 0x10000;
      std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                    0xDC00 + (v & 0x3FF));
      out += buf;
    } else {
      appendUtf8(out, c);
    }
  }
  out += '"';
}

std::string Value::toJson(bool ensureAscii, int indent,
                          const std::string &itemSep, const std::string &keySep,
                          bool sortKeys) const {
  std::string out;
  dumpJson(out, ensureAscii, indent, 0, itemSep, keySep, sortKeys);
  return out;
}

void Value::dumpJson(std::string &out, bool ensureAscii, int indent, int depth,
                     const std::string &itemSep, const std::string &keySep,
                     bool sortKeys) const {
  auto newline = [&](int level) {
    if (indent >= 0) {
      out += '\n';
      out.append(static_cast<size_t>(indent * level), ' ');
    }
  };
  switch (k) {
  case Kind::None:
    out += "null";
    return;
  case Kind::Bool:
    out += b ? "true" : "false";
    return;
  case Kind::Int:
    out += std::to_string(i);
    return;
  case Kind::Float: {
    std::string r = pyFloatRepr(d);
    out += r == "nan"    ? "NaN"
           : r == "inf"  ? "Infinity"
           : r == "-inf" ? "-Infinity"
                         : r;
    return;
  }
  case Kind::String:
    dumpJsonString(out, *s, ensureAscii);
    return;
  case Kind::List:
    if (l->empty()) {
      out += "[]";
      return;
    }
    out += "[";
    for (size_t n = 0; n < l->size(); ++n) {
      if (n)
        out += itemSep;
      newline(depth + 1);
      (*l)[n].dumpJson(out, ensureAscii, indent, depth + 1, itemSep, keySep,
                       sortKeys);
    }
    newline(depth);
    out += "]";
    return;
  case Kind::Dict: {
    if (m->items.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<std::string, Value> *> entries;
    for (const auto &item : m->items)
      entries.push_back(&item);
    if (sortKeys)
      std::stable_sort(entries.begin(), entries.end(),
                       [](auto *a, auto *b) { return a->first < b->first; });
    out += "{";
    for (size_t n = 0; n < entries.size(); ++n) {
      if (n)
        out += itemSep;
      newline(depth + 1);
      dumpJsonString(out, entries[n]->first, ensureAscii);
      out += keySep;
      entries[n]->second.dumpJson(out, ensureAscii, indent, depth + 1, itemSep,
                                  keySep, sortKeys);
    }
    newline(depth);
    out += "}";
    return;
  }
  default:
    throw TemplateError("Object of type " + typeName() +
                        " is not JSON serializable");
  }
}

} // namespace weft::tokenizer::jinja
