// The parsed form of a template: expressions and statements, each with the
// line it came from.
#ifndef WEFT_RUNTIME_TOKENIZER_JINJA_AST_H
#define WEFT_RUNTIME_TOKENIZER_JINJA_AST_H

#include "runtime/tokenizer/jinja/Value.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace weft::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

/// Arguments as written at a call, filter or test.
struct ArgList {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> named;
};

struct Expr {
  enum class Kind {
    Literal,   // value
    Name,      // name
    List,      // items
    Tuple,     // items
    Dict,      // items: key, value, key, value...
    Attribute, // operand.name
    Item,      // operand[items[0]]
    Slice,     // operand[items[0]:items[1]:items[2]] (null parts absent)
    Call,      // operand(args)
    Filter,    // operand | name(args)
    Test,      // operand is [not] name(args)
    Unary,     // op operand: "-", "+", "not"
    Binary,    // items[0] op items[1]: arithmetic, "~", comparisons, "in"
    And,       // items[0] and items[1]
    Or,        // items[0] or items[1]
    Ternary,   // items[0] if items[1] else items[2] (null: undefined)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name; // name, attribute, filter, test, or operator
  bool negated = false;
  ExprPtr operand;
  std::vector<ExprPtr> items;
  ArgList args;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

/// A macro parameter and its default, if any.
struct Param {
  std::string name;
  ExprPtr defaultValue;
};

struct Stmt {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // conditions[i] guards bodies[i]; a last extra body is else
    For,       // for targets in expr [if filter]: bodies[0], else bodies[1]
    Set,       // set targets = expr, or set target.name = expr, or a block set
    Macro,     // macro name(params): bodies[0]
    CallBlock, // call(params) expr: bodies[0] is the caller
    FilterBlock, // filter expr (a filter chain on a placeholder): bodies[0]
    Break,
    Continue,
    Generation, // transformers' {% generation %}: renders bodies[0]
  };
  Kind kind;
  int line = 0;
  std::string text;
  std::string name;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attribute; // set target.attribute
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  std::vector<Param> params;
};

/// A parsed template.
struct Template {
  Body body;
  std::string origin;
};

} // namespace weft::tokenizer::jinja

#endif // WEFT_RUNTIME_TOKENIZER_JINJA_AST_H
