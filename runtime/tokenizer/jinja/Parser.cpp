// Parses a template's pieces into statements and expressions.
#include "runtime/tokenizer/jinja/Parser.h"

#include "runtime/tokenizer/jinja/Builtins.h"
#include "runtime/tokenizer/jinja/Error.h"
#include "runtime/tokenizer/jinja/Lexer.h"

#include <algorithm>

namespace weft::tokenizer::jinja {
namespace {

ExprPtr makeExpr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

std::string describe(const Token &tok) {
  switch (tok.kind) {
  case Token::Kind::End:
    return "end of tag";
  case Token::Kind::String:
    return "string literal";
  default:
    return "'" + tok.text + "'";
  }
}

/// The expression grammar over one tag's tokens.
class ExprParser {
public:
  explicit ExprParser(const std::vector<Token> &tokens) : toks(tokens) {}

  const Token &peek(size_t ahead = 0) const {
    return toks[std::min(pos + ahead, toks.size() - 1)];
  }
  const Token &next() {
    const Token &t = peek();
    if (pos < toks.size() - 1)
      ++pos;
    return t;
  }
  bool acceptOp(std::string_view op) {
    if (!peek().isOp(op))
      return false;
    next();
    return true;
  }
  bool acceptName(std::string_view name) {
    if (!peek().isName(name))
      return false;
    next();
    return true;
  }
  void expectOp(std::string_view op) {
    if (!acceptOp(op))
      fail("expected '" + std::string(op) + "', found " + describe(peek()));
  }
  std::string expectIdentifier() {
    if (peek().kind != Token::Kind::Name)
      fail("expected a name, found " + describe(peek()));
    return next().text;
  }
  void expectEnd() {
    if (peek().kind != Token::Kind::End)
      fail("unexpected " + describe(peek()));
  }
  [[noreturn]] void fail(const std::string &message) const {
    throw TemplateError(message, peek().line);
  }

  /// A full expression, where a bare `a, b` is a tuple.
  ExprPtr parseTuple(bool withCondexpr = true) {
    int line = peek().line;
    ExprPtr first = parseExpression(withCondexpr);
    if (!peek().isOp(","))
      return first;
    auto tuple = makeExpr(Expr::Kind::Tuple, line);
    tuple->items.push_back(std::move(first));
    while (acceptOp(",")) {
      if (atTupleEnd())
        break;
      tuple->items.push_back(parseExpression(withCondexpr));
    }
    return tuple;
  }

  ExprPtr parseExpression(bool withCondexpr = true) {
    ExprPtr expr = parseOr();
    if (!withCondexpr || !peek().isName("if"))
      return expr;
    int line = next().line;
    auto ternary = makeExpr(Expr::Kind::Ternary, line);
    ternary->items.push_back(std::move(expr));
    ternary->items.push_back(parseOr());
    ternary->items.push_back(acceptName("else") ? parseExpression() : nullptr);
    return ternary;
  }

private:
  bool atTupleEnd() const {
    const Token &t = peek();
    return t.kind == Token::Kind::End || t.isOp(")") || t.isOp("]") ||
           t.isOp("}") || t.isOp("=") || t.isName("if") || t.isName("in");
  }

  ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr lhs, ExprPtr rhs,
                 int line) {
    auto e = makeExpr(kind, line);
    e->name = std::move(op);
    e->items.push_back(std::move(lhs));
    e->items.push_back(std::move(rhs));
    return e;
  }

  ExprPtr parseOr() {
    ExprPtr lhs = parseAnd();
    while (peek().isName("or")) {
      int line = next().line;
      lhs = binary(Expr::Kind::Or, "or", std::move(lhs), parseAnd(), line);
    }
    return lhs;
  }

  ExprPtr parseAnd() {
    ExprPtr lhs = parseNot();
    while (peek().isName("and")) {
      int line = next().line;
      lhs = binary(Expr::Kind::And, "and", std::move(lhs), parseNot(), line);
    }
    return lhs;
  }

  ExprPtr parseNot() {
    if (!peek().isName("not"))
      return parseCompare();
    int line = next().line;
    auto e = makeExpr(Expr::Kind::Unary, line);
    e->name = "not";
    e->operand = parseNot();
    return e;
  }

  std::string compareOp() {
    static const char *ops[] = {"==", "!=", "<", ">", "<=", ">="};
    for (const char *op : ops)
      if (peek().isOp(op))
        return next().text;
    if (acceptName("in"))
      return "in";
    if (peek().isName("not") && peek(1).isName("in")) {
      next();
      next();
      return "not in";
    }
    return "";
  }

  ExprPtr parseCompare() {
    ExprPtr lhs = parseMath1();
    int line = peek().line;
    std::string op = compareOp();
    if (op.empty())
      return lhs;
    ExprPtr result =
        binary(Expr::Kind::Binary, op, std::move(lhs), parseMath1(), line);
    if (!compareOp().empty())
      throw TemplateError("unsupported construct: chained comparison", line);
    return result;
  }

  template <typename Next>
  ExprPtr parseLeftAssoc(std::initializer_list<std::string_view> ops,
                         Next nextLevel) {
    ExprPtr lhs = (this->*nextLevel)();
    while (true) {
      auto it = std::find_if(ops.begin(), ops.end(), [&](std::string_view op) {
        return peek().isOp(op);
      });
      if (it == ops.end())
        return lhs;
      const Token &t = next();
      lhs = binary(Expr::Kind::Binary, t.text, std::move(lhs),
                   (this->*nextLevel)(), t.line);
    }
  }

  ExprPtr parseMath1() {
    return parseLeftAssoc({"+", "-"}, &ExprParser::parseConcat);
  }
  ExprPtr parseConcat() {
    return parseLeftAssoc({"~"}, &ExprParser::parseMath2);
  }
  ExprPtr parseMath2() {
    return parseLeftAssoc({"*", "/", "//", "%"}, &ExprParser::parsePow);
  }
  ExprPtr parsePow() {
    return parseLeftAssoc({"**"}, &ExprParser::parseUnaryFiltered);
  }
  ExprPtr parseUnaryFiltered() { return parseUnary(true); }

  ExprPtr parseUnary(bool withFilter) {
    ExprPtr node;
    if (peek().isOp("-") || peek().isOp("+")) {
      const Token &t = next();
      node = makeExpr(Expr::Kind::Unary, t.line);
      node->name = t.text;
      node->operand = parseUnary(false);
    } else {
      node = parsePrimary();
    }
    node = parsePostfix(std::move(node));
    return withFilter ? parseFilterExpr(std::move(node)) : std::move(node);
  }

  ExprPtr parsePrimary() {
    const Token &t = next();
    switch (t.kind) {
    case Token::Kind::Name:
      return parseNamePrimary(t);
    case Token::Kind::String: {
      auto e = makeExpr(Expr::Kind::Literal, t.line);
      std::string text = t.text;
      while (peek().kind == Token::Kind::String)
        text += next().text;
      e->value = Value::string(text);
      return e;
    }
    case Token::Kind::Int: {
      auto e = makeExpr(Expr::Kind::Literal, t.line);
      e->value = Value::integer(t.intValue);
      return e;
    }
    case Token::Kind::Float: {
      auto e = makeExpr(Expr::Kind::Literal, t.line);
      e->value = Value::floating(t.floatValue);
      return e;
    }
    case Token::Kind::Op:
      if (t.text == "(")
        return parseParenthesized(t.line);
      if (t.text == "[")
        return parseSequence(Expr::Kind::List, "]", t.line);
      if (t.text == "{")
        return parseDict(t.line);
      break;
    default:
      break;
    }
    throw TemplateError("unexpected " + describe(t), t.line);
  }

  ExprPtr parseNamePrimary(const Token &t) {
    auto e = makeExpr(Expr::Kind::Literal, t.line);
    if (t.text == "true" || t.text == "True")
      e->value = Value::boolean(true);
    else if (t.text == "false" || t.text == "False")
      e->value = Value::boolean(false);
    else if (t.text == "none" || t.text == "None")
      e->value = Value::none();
    else {
      e->kind = Expr::Kind::Name;
      e->name = t.text;
    }
    return e;
  }

  ExprPtr parseParenthesized(int line) {
    if (acceptOp(")"))
      return makeExpr(Expr::Kind::Tuple, line);
    ExprPtr inner = parseTuple();
    expectOp(")");
    return inner;
  }

  ExprPtr parseSequence(Expr::Kind kind, std::string_view close, int line) {
    auto e = makeExpr(kind, line);
    while (!acceptOp(close)) {
      if (!e->items.empty())
        expectOp(",");
      if (acceptOp(close))
        break;
      e->items.push_back(parseExpression());
    }
    return e;
  }

  ExprPtr parseDict(int line) {
    auto e = makeExpr(Expr::Kind::Dict, line);
    while (!acceptOp("}")) {
      if (!e->items.empty())
        expectOp(",");
      if (acceptOp("}"))
        break;
      e->items.push_back(parseExpression());
      expectOp(":");
      e->items.push_back(parseExpression());
    }
    return e;
  }

  ExprPtr parsePostfix(ExprPtr node) {
    while (true) {
      const Token &t = peek();
      if (t.isOp(".")) {
        next();
        const Token &attr = next();
        if (attr.kind == Token::Kind::Int) {
          auto e = makeExpr(Expr::Kind::Item, attr.line);
          e->operand = std::move(node);
          auto index = makeExpr(Expr::Kind::Literal, attr.line);
          index->value = Value::integer(attr.intValue);
          e->items.push_back(std::move(index));
          node = std::move(e);
          continue;
        }
        if (attr.kind != Token::Kind::Name)
          throw TemplateError("expected an attribute name after '.'",
                              attr.line);
        auto e = makeExpr(Expr::Kind::Attribute, attr.line);
        e->operand = std::move(node);
        e->name = attr.text;
        node = std::move(e);
      } else if (t.isOp("[")) {
        next();
        node = parseSubscript(std::move(node), t.line);
      } else if (t.isOp("(")) {
        next();
        auto e = makeExpr(Expr::Kind::Call, t.line);
        e->operand = std::move(node);
        e->args = parseCallArgs();
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  ExprPtr parseSubscript(ExprPtr node, int line) {
    ExprPtr parts[3];
    bool isSlice = false;
    if (!peek().isOp(":"))
      parts[0] = parseExpression();
    if (acceptOp(":")) {
      isSlice = true;
      if (!peek().isOp("]") && !peek().isOp(":"))
        parts[1] = parseExpression();
      if (acceptOp(":") && !peek().isOp("]"))
        parts[2] = parseExpression();
    }
    expectOp("]");
    auto e = makeExpr(isSlice ? Expr::Kind::Slice : Expr::Kind::Item, line);
    e->operand = std::move(node);
    for (int n = 0; n < (isSlice ? 3 : 1); ++n)
      e->items.push_back(std::move(parts[n]));
    return e;
  }

  /// After the '(': arguments up to and including the ')'.
  ArgList parseCallArgs() {
    ArgList args;
    while (!acceptOp(")")) {
      if (!args.positional.empty() || !args.named.empty())
        expectOp(",");
      if (acceptOp(")"))
        break;
      if (peek().isOp("*") || peek().isOp("**"))
        fail("unsupported construct: *args or **kwargs in a call");
      if (peek().kind == Token::Kind::Name && peek(1).isOp("=")) {
        std::string key = next().text;
        next();
        args.named.emplace_back(key, parseExpression());
      } else {
        if (!args.named.empty())
          fail("positional argument after a keyword argument");
        args.positional.push_back(parseExpression());
      }
    }
    return args;
  }

  ExprPtr parseFilterExpr(ExprPtr node) {
    while (true) {
      if (peek().isOp("|")) {
        next();
        node = parseFilter(std::move(node));
      } else if (peek().isName("is")) {
        next();
        node = parseTest(std::move(node));
      } else if (peek().isOp("(")) {
        int line = next().line;
        auto e = makeExpr(Expr::Kind::Call, line);
        e->operand = std::move(node);
        e->args = parseCallArgs();
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

public:
  ExprPtr parseFilter(ExprPtr node) {
    const Token &t = next();
    if (t.kind != Token::Kind::Name)
      throw TemplateError("expected a filter name after '|'", t.line);
    if (!isKnownFilter(t.text) && !isOtherJinjaFilter(t.text))
      throw TemplateError("unsupported filter '" + t.text + "'", t.line);
    auto e = makeExpr(Expr::Kind::Filter, t.line);
    e->name = t.text;
    e->operand = std::move(node);
    if (acceptOp("("))
      e->args = parseCallArgs();
    return e;
  }

private:
  ExprPtr parseTest(ExprPtr node) {
    int line = peek().line;
    bool negated = acceptName("not");
    const Token &t = next();
    if (t.kind != Token::Kind::Name)
      throw TemplateError("expected a test name after 'is'", t.line);
    if (!isKnownTest(t.text) && !isOtherJinjaTest(t.text))
      throw TemplateError("unsupported test '" + t.text + "'", t.line);
    auto e = makeExpr(Expr::Kind::Test, line);
    e->name = t.text;
    e->negated = negated;
    e->operand = std::move(node);
    const Token &arg = peek();
    if (acceptOp("(")) {
      e->args = parseCallArgs();
    } else if ((arg.kind == Token::Kind::Name ||
                arg.kind == Token::Kind::String ||
                arg.kind == Token::Kind::Int ||
                arg.kind == Token::Kind::Float || arg.isOp("[") ||
                arg.isOp("{")) &&
               !arg.isName("else") && !arg.isName("or") && !arg.isName("and")) {
      if (arg.isName("is"))
        fail("unsupported construct: chained tests");
      e->args.positional.push_back(parsePostfix(parsePrimary()));
    }
    return e;
  }

  const std::vector<Token> &toks;
  size_t pos = 0;
};

/// Statements over the template's pieces.
class StmtParser {
public:
  explicit StmtParser(std::vector<Piece> pieces) : pieces(std::move(pieces)) {}

  Body parseAll() {
    std::string end;
    Body body = parseBody({}, end);
    return body;
  }

private:
  static std::string keyword(const Piece &piece) {
    const Token &t = piece.tokens.front();
    return t.kind == Token::Kind::Name ? t.text : "";
  }

  /// Parses until a statement named in `ends` (left unconsumed, its name in
  /// `found`) or the end of the template.
  Body parseBody(const std::vector<std::string> &ends, std::string &found) {
    Body body;
    while (idx < pieces.size()) {
      Piece &piece = pieces[idx];
      if (piece.kind == Piece::Kind::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->line = piece.line;
        s->text = piece.text;
        body.push_back(std::move(s));
        ++idx;
        continue;
      }
      if (piece.kind == Piece::Kind::Expression) {
        ExprParser p(piece.tokens);
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->line = piece.line;
        s->expr = p.parseTuple();
        p.expectEnd();
        body.push_back(std::move(s));
        ++idx;
        continue;
      }
      std::string kw = keyword(piece);
      if (std::find(ends.begin(), ends.end(), kw) != ends.end()) {
        found = kw;
        return body;
      }
      body.push_back(parseStatement(piece, kw));
    }
    if (!ends.empty())
      throw TemplateError("missing '{% " + ends.back() +
                              " %}' before the end of "
                              "the template",
                          pieces.empty() ? 1 : pieces.back().line);
    return body;
  }

  std::unique_ptr<Stmt> newStmt(Stmt::Kind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  /// Consumes the closing tag at `idx`, which must hold nothing but its
  /// keyword (and for endmacro, optionally the macro's name).
  void closeTag(bool allowName = false) {
    ExprParser p(pieces[idx].tokens);
    p.next();
    if (allowName && p.peek().kind == Token::Kind::Name)
      p.next();
    p.expectEnd();
    ++idx;
  }

  std::unique_ptr<Stmt> parseStatement(Piece &piece, const std::string &kw) {
    int line = piece.line;
    if (kw == "if")
      return parseIf(piece);
    if (kw == "for")
      return parseFor(piece);
    if (kw == "set")
      return parseSet(piece);
    if (kw == "macro")
      return parseMacro(piece);
    if (kw == "call")
      return parseCallBlock(piece);
    if (kw == "filter")
      return parseFilterBlock(piece);
    if (kw == "generation")
      return parseGeneration(piece);
    if (kw == "break" || kw == "continue") {
      ExprParser p(piece.tokens);
      p.next();
      p.expectEnd();
      ++idx;
      return newStmt(kw == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue,
                     line);
    }
    static const char *blockEnds[] = {"endif",    "endfor",  "endset",
                                      "endmacro", "endcall", "endfilter",
                                      "elif",     "else",    "endgeneration"};
    for (const char *end : blockEnds)
      if (kw == end)
        throw TemplateError("unexpected '{% " + kw + " %}'", line);
    if (kw.empty())
      throw TemplateError("expected a statement name", line);
    throw TemplateError("unsupported statement '" + kw + "'", line);
  }

  std::unique_ptr<Stmt> parseIf(Piece &piece) {
    auto s = newStmt(Stmt::Kind::If, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    s->conditions.push_back(p.parseTuple());
    p.expectEnd();
    ++idx;
    while (true) {
      std::string found;
      s->bodies.push_back(parseBody({"elif", "else", "endif"}, found));
      Piece &tag = pieces[idx];
      if (found == "elif") {
        ExprParser q(tag.tokens);
        q.next();
        s->conditions.push_back(q.parseTuple());
        q.expectEnd();
        ++idx;
        continue;
      }
      if (found == "else") {
        closeTag();
        s->bodies.push_back(parseBody({"endif"}, found));
      }
      closeTag();
      return s;
    }
  }

  std::vector<std::string> parseTargets(ExprParser &p) {
    std::vector<std::string> targets;
    bool paren = p.acceptOp("(");
    do {
      targets.push_back(p.expectIdentifier());
    } while (p.acceptOp(","));
    if (paren)
      p.expectOp(")");
    return targets;
  }

  std::unique_ptr<Stmt> parseFor(Piece &piece) {
    auto s = newStmt(Stmt::Kind::For, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    s->targets = parseTargets(p);
    if (!p.acceptName("in"))
      p.fail("expected 'in' in a for loop");
    s->expr = p.parseTuple(/*withCondexpr=*/false);
    if (p.acceptName("if"))
      s->filter = p.parseExpression(false);
    if (p.peek().isName("recursive"))
      p.fail("unsupported construct: recursive for loop");
    p.expectEnd();
    ++idx;
    std::string found;
    s->bodies.push_back(parseBody({"else", "endfor"}, found));
    if (found == "else") {
      closeTag();
      s->bodies.push_back(parseBody({"endfor"}, found));
    }
    closeTag();
    return s;
  }

  std::unique_ptr<Stmt> parseSet(Piece &piece) {
    auto s = newStmt(Stmt::Kind::Set, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    std::string first = p.expectIdentifier();
    if (p.acceptOp(".")) {
      s->targets.push_back(first);
      s->attribute = p.expectIdentifier();
    } else {
      s->targets.push_back(first);
      while (p.acceptOp(","))
        s->targets.push_back(p.expectIdentifier());
    }
    if (p.acceptOp("=")) {
      s->expr = p.parseTuple();
      p.expectEnd();
      ++idx;
      return s;
    }
    if (s->targets.size() != 1 || !s->attribute.empty())
      p.fail("expected '=' in a set statement");
    p.expectEnd();
    ++idx;
    std::string found;
    s->bodies.push_back(parseBody({"endset"}, found));
    closeTag();
    return s;
  }

  std::vector<Param> parseParams(ExprParser &p) {
    std::vector<Param> params;
    p.expectOp("(");
    while (!p.acceptOp(")")) {
      if (!params.empty())
        p.expectOp(",");
      Param param;
      param.name = p.expectIdentifier();
      if (p.acceptOp("="))
        param.defaultValue = p.parseExpression();
      params.push_back(std::move(param));
    }
    return params;
  }

  std::unique_ptr<Stmt> parseMacro(Piece &piece) {
    auto s = newStmt(Stmt::Kind::Macro, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    s->name = p.expectIdentifier();
    s->params = parseParams(p);
    p.expectEnd();
    ++idx;
    std::string found;
    s->bodies.push_back(parseBody({"endmacro"}, found));
    closeTag(/*allowName=*/true);
    return s;
  }

  std::unique_ptr<Stmt> parseCallBlock(Piece &piece) {
    auto s = newStmt(Stmt::Kind::CallBlock, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    if (p.peek().isOp("("))
      s->params = parseParams(p);
    s->expr = p.parseExpression();
    if (s->expr->kind != Expr::Kind::Call)
      p.fail("expected a call in a call block");
    p.expectEnd();
    ++idx;
    std::string found;
    s->bodies.push_back(parseBody({"endcall"}, found));
    closeTag();
    return s;
  }

  std::unique_ptr<Stmt> parseFilterBlock(Piece &piece) {
    auto s = newStmt(Stmt::Kind::FilterBlock, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    auto placeholder = makeExpr(Expr::Kind::Name, piece.line);
    placeholder->name = kFilterBlockBody;
    ExprPtr chain = p.parseFilter(std::move(placeholder));
    while (p.acceptOp("|"))
      chain = p.parseFilter(std::move(chain));
    p.expectEnd();
    s->expr = std::move(chain);
    ++idx;
    std::string found;
    s->bodies.push_back(parseBody({"endfilter"}, found));
    closeTag();
    return s;
  }

  std::unique_ptr<Stmt> parseGeneration(Piece &piece) {
    auto s = newStmt(Stmt::Kind::Generation, piece.line);
    ExprParser p(piece.tokens);
    p.next();
    p.expectEnd();
    ++idx;
    std::string found;
    s->bodies.push_back(parseBody({"endgeneration"}, found));
    closeTag();
    return s;
  }

  std::vector<Piece> pieces;
  size_t idx = 0;
};

} // namespace

std::unique_ptr<Template> parseTemplate(std::string_view source) {
  auto tmpl = std::make_unique<Template>();
  tmpl->body = StmtParser(lexTemplate(source)).parseAll();
  return tmpl;
}

} // namespace weft::tokenizer::jinja
