// Renders a parsed template.
#include "runtime/tokenizer/jinja/Interpreter.h"

#include "runtime/tokenizer/jinja/Builtins.h"
#include "runtime/tokenizer/jinja/Error.h"

#include <cmath>
#include <memory>
#include <unordered_map>

namespace weft::tokenizer::jinja {
namespace {

/// Variables of one Jinja frame: the template's top level, a loop
/// iteration, or a macro call. Lookups fall back to the parent.
struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;

  Value lookup(const std::string &name) const {
    for (const Scope *s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end())
        return it->second;
    }
    return Value::undefined("'" + name + "' is undefined");
  }
};
using ScopePtr = std::shared_ptr<Scope>;

ScopePtr childOf(const ScopePtr &parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

enum class Flow { Normal, Break, Continue };

[[noreturn]] void typeError(const std::string &op, const Value &a,
                            const Value &b) {
  if (a.isUndefined() || b.isUndefined()) {
    const Value &u = a.isUndefined() ? a : b;
    throw TemplateError("undefined value used: " +
                        (u.name().empty() ? std::string("value") : u.name()));
  }
  throw TemplateError("unsupported operand type(s) for " + op + ": '" +
                      a.typeName() + "' and '" + b.typeName() + "'");
}

Value repeat(const Value &seq, int64_t times) {
  if (seq.isString()) {
    std::string out;
    for (int64_t i = 0; i < times; ++i)
      out += seq.asString();
    return Value::string(out);
  }
  ValueList out;
  for (int64_t i = 0; i < times; ++i)
    out.insert(out.end(), seq.asList().begin(), seq.asList().end());
  return Value::list(std::move(out));
}

Value arithmetic(const std::string &op, const Value &a, const Value &b) {
  if (op == "+") {
    if (a.isString() && b.isString())
      return Value::string(a.asString() + b.asString());
    if (a.isList() && b.isList()) {
      ValueList out = a.asList();
      out.insert(out.end(), b.asList().begin(), b.asList().end());
      return Value::list(std::move(out));
    }
  }
  if (op == "*" && (a.isString() || a.isList()) && (b.isInt() || b.isBool()))
    return repeat(a, b.asInt());
  if (op == "*" && (b.isString() || b.isList()) && (a.isInt() || a.isBool()))
    return repeat(b, a.asInt());
  if (!a.isNumber() || !b.isNumber())
    typeError(op, a, b);
  bool floats = a.isFloat() || b.isFloat();
  if (op == "/") {
    if (b.asDouble() == 0)
      throw TemplateError("division by zero");
    return Value::floating(a.asDouble() / b.asDouble());
  }
  if ((op == "//" || op == "%") && b.asDouble() == 0)
    throw TemplateError("integer division or modulo by zero");
  if (floats) {
    double x = a.asDouble(), y = b.asDouble();
    if (op == "+")
      return Value::floating(x + y);
    if (op == "-")
      return Value::floating(x - y);
    if (op == "*")
      return Value::floating(x * y);
    if (op == "//")
      return Value::floating(std::floor(x / y));
    if (op == "%") {
      double r = std::fmod(x, y);
      if (r != 0 && ((r < 0) != (y < 0)))
        r += y;
      return Value::floating(r);
    }
    return Value::floating(std::pow(x, y));
  }
  int64_t x = a.asInt(), y = b.asInt();
  if (op == "+")
    return Value::integer(x + y);
  if (op == "-")
    return Value::integer(x - y);
  if (op == "*")
    return Value::integer(x * y);
  if (op == "//") {
    int64_t q = x / y;
    if ((x % y != 0) && ((x < 0) != (y < 0)))
      --q;
    return Value::integer(q);
  }
  if (op == "%") {
    int64_t r = x % y;
    if (r != 0 && ((r < 0) != (y < 0)))
      r += y;
    return Value::integer(r);
  }
  if (y < 0)
    return Value::floating(
        std::pow(static_cast<double>(x), static_cast<double>(y)));
  int64_t result = 1;
  for (int64_t i = 0; i < y; ++i)
    result *= x;
  return Value::integer(result);
}

class Renderer {
public:
  Flow execBody(const Body &body, const ScopePtr &scope, std::string &out) {
    for (const auto &stmt : body) {
      Flow flow;
      try {
        flow = exec(*stmt, scope, out);
      } catch (TemplateError &err) {
        err.setLineIfUnknown(stmt->line);
        throw;
      }
      if (flow != Flow::Normal)
        return flow;
    }
    return Flow::Normal;
  }

private:
  Flow exec(const Stmt &s, const ScopePtr &scope, std::string &out) {
    switch (s.kind) {
    case Stmt::Kind::Text:
      out += s.text;
      return Flow::Normal;
    case Stmt::Kind::Output:
      out += eval(*s.expr, scope).str();
      return Flow::Normal;
    case Stmt::Kind::If:
      for (size_t i = 0; i < s.conditions.size(); ++i)
        if (eval(*s.conditions[i], scope).truthy())
          return execBody(s.bodies[i], scope, out);
      if (s.bodies.size() > s.conditions.size())
        return execBody(s.bodies.back(), scope, out);
      return Flow::Normal;
    case Stmt::Kind::For:
      execFor(s, scope, out);
      return Flow::Normal;
    case Stmt::Kind::Set:
      execSet(s, scope);
      return Flow::Normal;
    case Stmt::Kind::Macro:
      scope->vars[s.name] = makeMacro(s, scope);
      return Flow::Normal;
    case Stmt::Kind::CallBlock:
      out += execCallBlock(s, scope).str();
      return Flow::Normal;
    case Stmt::Kind::FilterBlock: {
      std::string body;
      ScopePtr inner = childOf(scope);
      execBody(s.bodies[0], inner, body);
      inner->vars[kFilterBlockBody] = Value::string(body);
      out += eval(*s.expr, inner).str();
      return Flow::Normal;
    }
    case Stmt::Kind::Generation:
      execBody(s.bodies[0], childOf(scope), out);
      return Flow::Normal;
    case Stmt::Kind::Break:
      return Flow::Break;
    case Stmt::Kind::Continue:
      return Flow::Continue;
    }
    return Flow::Normal;
  }

  void bindTargets(Scope &scope, const std::vector<std::string> &targets,
                   const Value &value) {
    if (targets.size() == 1) {
      scope.vars[targets[0]] = value;
      return;
    }
    ValueList items = value.isList() ? value.asList() : value.iterate();
    if (items.size() != targets.size())
      throw TemplateError("cannot unpack " + std::to_string(items.size()) +
                          " values into " + std::to_string(targets.size()) +
                          " names");
    for (size_t i = 0; i < targets.size(); ++i)
      scope.vars[targets[i]] = items[i];
  }

  Value loopObject(const ValueList &items, size_t i) {
    size_t n = items.size();
    ValueDict loop;
    loop.set("index", Value::integer(static_cast<int64_t>(i + 1)));
    loop.set("index0", Value::integer(static_cast<int64_t>(i)));
    loop.set("revindex", Value::integer(static_cast<int64_t>(n - i)));
    loop.set("revindex0", Value::integer(static_cast<int64_t>(n - i - 1)));
    loop.set("first", Value::boolean(i == 0));
    loop.set("last", Value::boolean(i + 1 == n));
    loop.set("length", Value::integer(static_cast<int64_t>(n)));
    loop.set("depth", Value::integer(1));
    loop.set("depth0", Value::integer(0));
    loop.set("previtem", i > 0 ? items[i - 1]
                               : Value::undefined("there is no previous item"));
    loop.set("nextitem", i + 1 < n ? items[i + 1]
                                   : Value::undefined("there is no next item"));
    loop.set("cycle", Value::function("loop.cycle", [i](CallArgs &args) {
               if (args.positional.empty())
                 throw TemplateError("no items for cycling given");
               return args.positional[i % args.positional.size()];
             }));
    return Value::dict(std::move(loop));
  }

  void execFor(const Stmt &s, const ScopePtr &scope, std::string &out) {
    Value iterable = eval(*s.expr, scope);
    ValueList items;
    for (const Value &item : iterable.iterate()) {
      if (s.filter) {
        ScopePtr probe = childOf(scope);
        bindTargets(*probe, s.targets, item);
        if (!eval(*s.filter, probe).truthy())
          continue;
      }
      items.push_back(item);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      ScopePtr iteration = childOf(scope);
      bindTargets(*iteration, s.targets, items[i]);
      iteration->vars["loop"] = loopObject(items, i);
      if (execBody(s.bodies[0], iteration, out) == Flow::Break)
        break;
    }
    if (items.empty() && s.bodies.size() > 1)
      execBody(s.bodies[1], childOf(scope), out);
  }

  void execSet(const Stmt &s, const ScopePtr &scope) {
    Value value;
    if (s.expr) {
      value = eval(*s.expr, scope);
    } else {
      std::string body;
      execBody(s.bodies[0], childOf(scope), body);
      value = Value::string(body);
    }
    if (!s.attribute.empty()) {
      Value ns = scope->lookup(s.targets[0]);
      if (!ns.isNamespace())
        throw TemplateError("cannot assign attribute on non-namespace object");
      if (!s.attribute.empty() && s.attribute[0] == '_')
        throw TemplateError("chat templates cannot store underscore-prefixed "
                            "attributes on a namespace");
      ns.asDict().set(s.attribute, value);
      return;
    }
    bindTargets(*scope, s.targets, value);
  }

  Value makeMacro(const Stmt &s, const ScopePtr &definedIn) {
    const Stmt *macro = &s;
    // Weak: the scope holds the macro, and a strong capture would be a cycle.
    std::weak_ptr<Scope> weakScope = definedIn;
    return Value::function(s.name, [this, macro, weakScope](CallArgs &args) {
      ScopePtr scope = weakScope.lock();
      if (!scope)
        throw TemplateError("macro '" + macro->name +
                            "' called outside the "
                            "block that defined it");
      return callMacro(*macro, scope, args);
    });
  }

  Value callMacro(const Stmt &macro, const ScopePtr &definedIn,
                  CallArgs &args) {
    if (++depth > 100)
      throw TemplateError("macro calls nested too deeply");
    ScopePtr scope = childOf(definedIn);
    if (args.positional.size() > macro.params.size())
      throw TemplateError("macro '" + macro.name + "' takes not more than " +
                          std::to_string(macro.params.size()) + " argument(s)");
    for (size_t i = 0; i < macro.params.size(); ++i) {
      const Param &param = macro.params[i];
      if (i < args.positional.size())
        scope->vars[param.name] = args.positional[i];
      else if (param.defaultValue)
        scope->vars[param.name] = eval(*param.defaultValue, scope);
      else
        scope->vars[param.name] =
            Value::undefined("parameter '" + param.name + "' was not provided");
    }
    for (const auto &[key, value] : args.named) {
      bool known = key == "caller";
      for (const Param &param : macro.params)
        known = known || param.name == key;
      if (!known)
        throw TemplateError("macro '" + macro.name +
                            "' takes no keyword argument '" + key + "'");
      scope->vars[key] = value;
    }
    std::string out;
    execBody(macro.bodies[0], scope, out);
    --depth;
    return Value::string(out);
  }

  Value execCallBlock(const Stmt &s, const ScopePtr &scope) {
    const Expr &call = *s.expr;
    Value callee = eval(*call.operand, scope);
    CallArgs args = evalArgs(call.args, scope);
    const Stmt *block = &s;
    args.named.emplace_back(
        "caller", Value::function("caller", [this, block, scope](CallArgs &a) {
          ScopePtr inner = childOf(scope);
          for (size_t i = 0; i < block->params.size(); ++i) {
            const Param &param = block->params[i];
            if (i < a.positional.size())
              inner->vars[param.name] = a.positional[i];
            else if (param.defaultValue)
              inner->vars[param.name] = eval(*param.defaultValue, inner);
          }
          std::string out;
          execBody(block->bodies[0], inner, out);
          return Value::string(out);
        }));
    return callValue(callee, args);
  }

  CallArgs evalArgs(const ArgList &list, const ScopePtr &scope) {
    CallArgs args;
    for (const auto &e : list.positional)
      args.positional.push_back(eval(*e, scope));
    for (const auto &[key, e] : list.named)
      args.named.emplace_back(key, eval(*e, scope));
    return args;
  }

  Value callValue(const Value &callee, CallArgs &args) {
    if (callee.isUndefined())
      throw TemplateError(
          "undefined value called: " +
          (callee.name().empty() ? std::string("value") : callee.name()));
    if (!callee.isFunction())
      throw TemplateError("'" + callee.typeName() + "' object is not callable");
    return callee.asFunction()(args);
  }

public:
  Value eval(const Expr &e, const ScopePtr &scope) {
    try {
      return evalInner(e, scope);
    } catch (TemplateError &err) {
      err.setLineIfUnknown(e.line);
      throw;
    }
  }

private:
  Value evalInner(const Expr &e, const ScopePtr &scope) {
    switch (e.kind) {
    case Expr::Kind::Literal:
      return e.value;
    case Expr::Kind::Name:
      return scope->lookup(e.name);
    case Expr::Kind::List:
    case Expr::Kind::Tuple: {
      ValueList items;
      for (const auto &item : e.items)
        items.push_back(eval(*item, scope));
      return e.kind == Expr::Kind::Tuple ? Value::tuple(std::move(items))
                                         : Value::list(std::move(items));
    }
    case Expr::Kind::Dict: {
      ValueDict dict;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value key = eval(*e.items[i], scope);
        if (!key.isString())
          throw TemplateError("unsupported: dict key of type " +
                              key.typeName());
        dict.set(key.asString(), eval(*e.items[i + 1], scope));
      }
      return Value::dict(std::move(dict));
    }
    case Expr::Kind::Attribute:
      return getAttribute(eval(*e.operand, scope), e.name);
    case Expr::Kind::Item:
      return getItem(eval(*e.operand, scope), eval(*e.items[0], scope));
    case Expr::Kind::Slice: {
      Value obj = eval(*e.operand, scope);
      auto part = [&](size_t i) {
        return e.items[i] ? eval(*e.items[i], scope) : Value::none();
      };
      return getSlice(obj, part(0), part(1), part(2));
    }
    case Expr::Kind::Call: {
      Value callee = eval(*e.operand, scope);
      CallArgs args = evalArgs(e.args, scope);
      return callValue(callee, args);
    }
    case Expr::Kind::Filter: {
      Value subject = eval(*e.operand, scope);
      CallArgs args = evalArgs(e.args, scope);
      return applyFilter(e.name, subject, args);
    }
    case Expr::Kind::Test: {
      Value subject = eval(*e.operand, scope);
      CallArgs args = evalArgs(e.args, scope);
      return Value::boolean(applyTest(e.name, subject, args) != e.negated);
    }
    case Expr::Kind::Unary:
      return evalUnary(e, scope);
    case Expr::Kind::Binary:
      return evalBinary(e, scope);
    case Expr::Kind::And: {
      Value lhs = eval(*e.items[0], scope);
      return lhs.truthy() ? eval(*e.items[1], scope) : lhs;
    }
    case Expr::Kind::Or: {
      Value lhs = eval(*e.items[0], scope);
      return lhs.truthy() ? lhs : eval(*e.items[1], scope);
    }
    case Expr::Kind::Ternary:
      if (eval(*e.items[1], scope).truthy())
        return eval(*e.items[0], scope);
      return e.items[2] ? eval(*e.items[2], scope)
                        : Value::undefined("the if expression was false and "
                                           "had no else");
    }
    return Value::undefined();
  }

  Value evalUnary(const Expr &e, const ScopePtr &scope) {
    Value v = eval(*e.operand, scope);
    if (e.name == "not")
      return Value::boolean(!v.truthy());
    if (!v.isNumber())
      throw TemplateError("bad operand type for unary " + e.name + ": '" +
                          v.typeName() + "'");
    if (e.name == "+")
      return v.isFloat() ? v : Value::integer(v.asInt());
    return v.isFloat() ? Value::floating(-v.asDouble())
                       : Value::integer(-v.asInt());
  }

  Value evalBinary(const Expr &e, const ScopePtr &scope) {
    Value a = eval(*e.items[0], scope);
    Value b = eval(*e.items[1], scope);
    const std::string &op = e.name;
    if (op == "~")
      return Value::string(a.str() + b.str());
    if (op == "==")
      return Value::boolean(a.equals(b));
    if (op == "!=")
      return Value::boolean(!a.equals(b));
    if (op == "<")
      return Value::boolean(a.less(b));
    if (op == ">")
      return Value::boolean(b.less(a));
    if (op == "<=")
      return Value::boolean(!b.less(a));
    if (op == ">=")
      return Value::boolean(!a.less(b));
    if (op == "in")
      return Value::boolean(contains(b, a));
    if (op == "not in")
      return Value::boolean(!contains(b, a));
    return arithmetic(op, a, b);
  }

  int depth = 0;
};

Value makeNamespace(CallArgs &args) {
  ValueDict attrs;
  for (const Value &v : args.positional) {
    if (!v.isDict())
      throw TemplateError("namespace() takes keyword arguments or a dict");
    for (const auto &[key, value] : v.asDict().items)
      attrs.set(key, value);
  }
  for (const auto &[key, value] : args.named)
    attrs.set(key, value);
  for (const auto &[key, value] : attrs.items)
    if (!key.empty() && key[0] == '_')
      throw TemplateError("chat templates cannot store underscore-prefixed "
                          "attributes on a namespace");
  return Value::makeNamespace(std::move(attrs));
}

Value makeDict(CallArgs &args) {
  ValueDict items;
  if (args.positional.size() > 1 ||
      (args.positional.size() == 1 && !args.positional[0].isDict()))
    throw TemplateError("unsupported: dict() of anything but a dict and "
                        "keyword arguments");
  if (!args.positional.empty())
    items = args.positional[0].asDict();
  for (const auto &[key, value] : args.named)
    items.set(key, value);
  return Value::dict(std::move(items));
}

Value makeRange(CallArgs &args) {
  ArgReader r(args, "range", {"start", "stop", "step"});
  if (!r.get(0))
    throw TemplateError("range expected at least 1 argument, got 0");
  int64_t start = 0, stop, step = r.getOr(2, Value::integer(1)).asInt();
  if (r.get(1)) {
    start = r.get(0)->asInt();
    stop = r.get(1)->asInt();
  } else {
    stop = r.get(0)->asInt();
  }
  if (step == 0)
    throw TemplateError("range() arg 3 must not be zero");
  ValueList out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    out.push_back(Value::integer(i));
    if (out.size() > 100000)
      throw TemplateError("range too big");
  }
  return Value::list(std::move(out));
}

} // namespace

ValueDict chatTemplateGlobals(std::time_t now) {
  ValueDict globals;
  globals.set("raise_exception",
              Value::function("raise_exception", [](CallArgs &args) -> Value {
                std::string message =
                    args.positional.empty() ? "" : args.positional[0].str();
                throw TemplateError(kRaisedPrefix + message);
              }));
  globals.set(
      "strftime_now", Value::function("strftime_now", [now](CallArgs &args) {
        ArgReader r(args, "strftime_now", {"format"});
        std::string format = r.getOr(0, Value::string("")).str();
        std::tm local{};
        localtime_r(&now, &local);
        std::string buf(256 + format.size() * 8, '\0');
        size_t n =
            std::strftime(buf.data(), buf.size(), format.c_str(), &local);
        if (n == 0 && !format.empty())
          throw TemplateError("strftime_now could not format '" + format + "'");
        buf.resize(n);
        return Value::string(buf);
      }));
  globals.set("namespace", Value::function("namespace", makeNamespace));
  globals.set("dict", Value::function("dict", makeDict));
  globals.set("range", Value::function("range", makeRange));
  return globals;
}

std::string renderTemplate(const Template &tmpl, const ValueDict &variables) {
  auto root = std::make_shared<Scope>();
  for (const auto &[key, value] : variables.items)
    root->vars[key] = value;
  std::string out;
  Renderer renderer;
  renderer.execBody(tmpl.body, root, out);
  return out;
}

} // namespace weft::tokenizer::jinja
