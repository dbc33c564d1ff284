#include "template/jinja_syntax.h"

#include "common/error.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

namespace hyft::tmpl {

using json = nlohmann::json;

namespace {

// --- expression tokens --------------------------------------------------------
struct Token {
  enum Kind { Name, Number, String, Op, End } kind;
  std::string text;
  json value;  // Number, String
};

std::vector<Token> tokenize_expr(const std::string& s, const std::string& where) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) { ++i; continue; }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Token::Name, s.substr(i, j - i), {}});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      const bool is_float = j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]));
      if (is_float) {
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        out.push_back({Token::Number, "", json(std::stod(s.substr(i, j - i)))});
      } else {
        out.push_back({Token::Number, "", json(std::stoll(s.substr(i, j - i)))});
      }
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) { v += s[j]; continue; }
        const char e = s[++j];
        v += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
      HYFT_CHECK(j < s.size(), where, ": a string literal is not closed");
      out.push_back({Token::String, "", json(v)});
      i = j + 1;
    } else {
      static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* t : two)
        if (s.compare(i, 2, t) == 0) op = t;
      HYFT_CHECK(std::string("()[]{}.,:|~+-*/%<>=!").find(c) != std::string::npos, where, ": unexpected character '",
                 std::string(1, c), "'");
      out.push_back({Token::Op, op, {}});
      i += op.size();
    }
  }
  out.push_back({Token::End, "", {}});
  return out;
}



using ExprPtr = std::unique_ptr<Expr>;

ExprPtr make(Expr::Kind k) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  return e;
}

// Operands as a vector (unique_ptrs cannot come from an initializer list).
std::vector<ExprPtr> vec(ExprPtr a, ExprPtr b = nullptr) {
  std::vector<ExprPtr> v;
  v.push_back(std::move(a));
  if (b) v.push_back(std::move(b));
  return v;
}

// A node of `k` over `operands` (a unary or binary operator; `op` names a binary one).
ExprPtr make_op(Expr::Kind k, std::vector<ExprPtr> operands, std::string op = "") {
  auto e = make(k);
  e->name = std::move(op);
  e->args = std::move(operands);
  return e;
}

const std::set<std::string> kFilters = {"trim", "upper", "lower", "capitalize", "title", "length", "count", "first",
                                        "last", "default", "d", "string", "int", "float", "join", "replace",
                                        "tojson", "list", "items", "safe"};
const std::set<std::string> kTests = {"defined", "undefined", "none", "string", "number", "integer", "boolean",
                                      "mapping", "sequence", "iterable", "odd", "even", "true", "false"};

// Recursive descent over one tag's tokens, in Jinja2's precedence order.
class ExprParser {
 public:
  ExprParser(std::vector<Token> tokens, std::string where) : t_(std::move(tokens)), where_(std::move(where)) {}

  const Token& peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  bool at_name(const char* n, size_t ahead = 0) const { return peek(ahead).kind == Token::Name && peek(ahead).text == n; }
  bool at_op(const char* o) const { return peek().kind == Token::Op && peek().text == o; }
  bool at_end() const { return peek().kind == Token::End; }
  Token next() { return t_[std::min(i_++, t_.size() - 1)]; }
  void expect_op(const char* o) {
    HYFT_CHECK(at_op(o), where_, ": expected '", o, "'", at_end() ? " before the end of the tag" : "");
    ++i_;
  }
  std::string expect_name() {
    HYFT_CHECK(peek().kind == Token::Name, where_, ": expected a name");
    return next().text;
  }
  void expect_end() {
    HYFT_CHECK(at_end(), where_, ": unexpected '", peek().text.empty() ? peek().value.dump() : peek().text,
               "' (this engine reads a subset of Jinja)");
  }

  ExprPtr expression() {  // a if c else b
    ExprPtr e = or_expr();
    if (at_name("if")) {
      ++i_;
      auto t = make(Expr::Ternary);
      t->args.push_back(std::move(e));
      t->args.push_back(or_expr());
      if (at_name("else")) {
        ++i_;
        t->args.push_back(expression());
      }
      return t;
    }
    return e;
  }
  ExprPtr or_expr() { return binary_chain({"or"}, [this] { return and_expr(); }, true); }
  ExprPtr and_expr() { return binary_chain({"and"}, [this] { return not_expr(); }, true); }
  ExprPtr not_expr() {
    if (at_name("not")) {
      ++i_;
      return make_op(Expr::Not, vec(not_expr()));
    }
    return compare();
  }
  ExprPtr compare() {
    ExprPtr left = math1();
    for (;;) {
      std::string op;
      if (peek().kind == Token::Op && (at_op("==") || at_op("!=") || at_op("<") || at_op(">") || at_op("<=") || at_op(">=")))
        op = next().text;
      else if (at_name("in")) op = (++i_, "in");
      else if (at_name("not") && at_name("in", 1)) op = (i_ += 2, "not in");
      else if (at_name("is")) {
        ++i_;
        auto t = make(Expr::Test);
        if (at_name("not")) {
          ++i_;
          t->negate = true;
        }
        t->name = expect_name();
        HYFT_CHECK(kTests.count(t->name), where_, ": the test 'is ", t->name, "' is not supported");
        t->args.push_back(std::move(left));
        left = std::move(t);
        continue;
      } else {
        return left;
      }
      left = make_op(Expr::Binary, vec(std::move(left), math1()), op);
    }
  }
  ExprPtr math1() { return binary_chain({"+", "-"}, [this] { return concat(); }, false); }
  ExprPtr concat() { return binary_chain({"~"}, [this] { return math2(); }, false); }
  ExprPtr math2() { return binary_chain({"*", "/", "//", "%"}, [this] { return unary(); }, false); }
  ExprPtr unary() {
    if (at_op("-")) {
      ++i_;
      return make_op(Expr::Neg, vec(unary()));
    }
    if (at_op("+")) ++i_;
    return filtered(postfix(primary()));
  }
  ExprPtr filtered(ExprPtr e) {
    while (at_op("|")) {
      ++i_;
      auto f = make(Expr::Filter);
      f->name = expect_name();
      HYFT_CHECK(kFilters.count(f->name), where_, ": the filter '|", f->name, "' is not supported");
      f->args.push_back(std::move(e));
      if (at_op("(")) call_arguments(*f);
      e = std::move(f);
    }
    return e;
  }
  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (at_op(".")) {
        ++i_;
        auto a = make(Expr::Attr);
        a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (at_op("[")) {
        ++i_;
        ExprPtr lo, hi;
        if (!at_op(":")) lo = expression();
        if (at_op(":")) {
          ++i_;
          auto s = make(Expr::Slice);
          if (!at_op("]")) hi = expression();
          HYFT_CHECK(!at_op(":"), where_, ": slices with a step are not supported");
          s->args.push_back(std::move(e));
          s->args.push_back(std::move(lo));
          s->args.push_back(std::move(hi));
          e = std::move(s);
        } else {
          auto x = make(Expr::Index);
          x->args.push_back(std::move(e));
          x->args.push_back(std::move(lo));
          e = std::move(x);
        }
        expect_op("]");
      } else if (at_op("(")) {
        auto c = make(Expr::Call);
        c->args.push_back(std::move(e));
        call_arguments(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  void call_arguments(Expr& e) {
    expect_op("(");
    while (!at_op(")")) {
      if (peek().kind == Token::Name && peek(1).kind == Token::Op && peek(1).text == "=") {
        std::string key = next().text;
        ++i_;
        e.kwargs.emplace_back(std::move(key), expression());
      } else {
        e.args.push_back(expression());
      }
      if (!at_op(")")) expect_op(",");
    }
    ++i_;
  }
  ExprPtr primary() {
    const Token t = next();
    if (t.kind == Token::Number || t.kind == Token::String) {
      auto l = make(Expr::Literal);
      l->literal = t.value;
      if (t.kind == Token::String)  // adjacent string literals join
        while (peek().kind == Token::String) l->literal = l->literal.get<std::string>() + next().value.get<std::string>();
      return l;
    }
    if (t.kind == Token::Name) {
      static const std::map<std::string, json> constants = {{"true", true},   {"True", true},  {"false", false},
                                                             {"False", false}, {"none", nullptr}, {"None", nullptr}};
      const auto c = constants.find(t.text);
      if (c != constants.end()) {
        auto l = make(Expr::Literal);
        l->literal = c->second;
        return l;
      }
      auto n = make(Expr::Name);
      n->name = t.text;
      return n;
    }
    if (t.kind == Token::Op && t.text == "(") {
      ExprPtr e = expression();
      HYFT_CHECK(!at_op(","), where_, ": tuples are not supported");
      expect_op(")");
      return e;
    }
    if (t.kind == Token::Op && t.text == "[") {
      auto l = make(Expr::List);
      while (!at_op("]")) {
        l->args.push_back(expression());
        if (!at_op("]")) expect_op(",");
      }
      ++i_;
      return l;
    }
    if (t.kind == Token::Op && t.text == "{") {
      auto d = make(Expr::Dict);
      while (!at_op("}")) {
        d->args.push_back(expression());
        expect_op(":");
        d->args.push_back(expression());
        if (!at_op("}")) expect_op(",");
      }
      ++i_;
      return d;
    }
    fail(where_, ": unexpected '", t.text, "' in an expression");
  }

 private:
  ExprPtr binary_chain(std::initializer_list<const char*> ops, const std::function<ExprPtr()>& operand, bool words) {
    ExprPtr left = operand();
    for (;;) {
      const char* op = nullptr;
      for (const char* o : ops)
        if (words ? at_name(o) : at_op(o)) op = o;
      if (!op) return left;
      ++i_;
      left = make_op(Expr::Binary, vec(std::move(left), operand()), op);
    }
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  std::string where_;
};

// --- template text to items: text, {{ }}, {% %}, with the whitespace rules -------
struct Item {
  enum Kind { Text, Output, Tag } kind;
  std::string content;
};

// End of a tag opened at `from`, skipping quoted strings; npos when unclosed.
size_t tag_end(const std::string& s, size_t from, const char* close) {
  char quote = 0;
  for (size_t i = from; i + 1 < s.size(); ++i) {
    if (quote) {
      if (s[i] == '\\') ++i;
      else if (s[i] == quote) quote = 0;
    } else if (s[i] == '\'' || s[i] == '"') {
      quote = s[i];
    } else if (s.compare(i, 2, close) == 0) {
      return i;
    }
  }
  return std::string::npos;
}

std::vector<Item> split_items(const std::string& src, const std::string& origin) {
  std::vector<Item> items;
  size_t pos = 0;
  bool trim_next_newline = false, strip_next = false;
  while (pos <= src.size()) {
    size_t start = std::string::npos;
    for (const char* open : {"{{", "{%", "{#"}) start = std::min(start, src.find(open, pos));
    std::string text = src.substr(pos, start == std::string::npos ? std::string::npos : start - pos);
    if (strip_next) text = strip(text, kWhitespace, true, false);
    else if (trim_next_newline && !text.empty() && text[0] == '\n') text.erase(0, 1);
    if (start == std::string::npos) {
      if (!text.empty()) items.push_back({Item::Text, text});
      break;
    }
    const char kind = src[start + 1];
    size_t inner = start + 2;
    const bool strip_before = inner < src.size() && src[inner] == '-';
    const bool keep_indent = inner < src.size() && src[inner] == '+';
    if (strip_before || keep_indent) ++inner;
    const char* close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    const size_t end = tag_end(src, inner, close);
    HYFT_CHECK(end != std::string::npos, origin, ": a '", src.substr(start, 2), "' is never closed");
    const bool strip_after = end > inner && src[end - 1] == '-';
    std::string content = src.substr(inner, end - inner - (strip_after ? 1 : 0));
    if (strip_before) {
      text = strip(text, kWhitespace, false, true);
    } else if (kind != '{' && !keep_indent) {
      // lstrip_blocks: spaces and tabs between the start of the line (in the source)
      // and a block tag go, when nothing else is on the line before it.
      const size_t nl = start == 0 ? std::string::npos : src.rfind('\n', start - 1);
      const size_t line_begin = nl == std::string::npos ? 0 : nl + 1;
      if (line_begin >= pos && src.find_first_not_of(" \t", line_begin) >= start)
        text.erase(text.size() - std::min(text.size(), start - line_begin));
    }
    if (!text.empty()) items.push_back({Item::Text, text});
    if (kind == '{') items.push_back({Item::Output, content});
    else if (kind == '%') items.push_back({Item::Tag, content});
    pos = end + 2;
    strip_next = strip_after;
    trim_next_newline = kind != '{';  // trim_blocks
  }
  return items;
}

// --- statements ------------------------------------------------------------------
class Parser {
 public:
  Parser(std::vector<Item> items, std::string origin) : items_(std::move(items)), origin_(std::move(origin)) {}

  std::unique_ptr<Node> parse_all() {
    auto root = body({});
    HYFT_CHECK(i_ == items_.size(), origin_, ": '{% ", first_word(items_[i_].content), " %}' without its opening tag");
    return root;
  }

 private:
  static std::string first_word(const std::string& s) {
    const std::string t = strip(s, kWhitespace, true, true);
    return t.substr(0, t.find_first_of(kWhitespace));
  }
  std::string where() const { return origin_ + ": '{% " + strip(items_[i_ - 1].content, kWhitespace, true, true) + " %}'"; }

  // Items until a tag whose first word is in `stops` (left unconsumed).
  std::unique_ptr<Node> body(const std::set<std::string>& stops) {
    auto node = std::make_unique<Node>();
    while (i_ < items_.size()) {
      const Item& it = items_[i_];
      if (it.kind == Item::Text) {
        auto t = std::make_unique<Node>();
        t->kind = Node::Text;
        t->text = it.content;
        node->children.push_back(std::move(t));
        ++i_;
      } else if (it.kind == Item::Output) {
        ++i_;
        ExprParser p(tokenize_expr(it.content, origin_), origin_ + ": '{{" + it.content + "}}'");
        auto o = std::make_unique<Node>();
        o->kind = Node::Output;
        o->expr = p.expression();
        p.expect_end();
        node->children.push_back(std::move(o));
      } else {
        const std::string word = first_word(it.content);
        if (stops.count(word)) return node;
        ++i_;
        node->children.push_back(statement(word, it.content));
      }
    }
    if (!stops.empty()) {
      std::string end;
      for (const auto& w : stops)
        if (w.rfind("end", 0) == 0) end = w;
      fail(origin_, ": a block is not closed: '{% ", end, " %}' is missing");
    }
    return node;
  }

  std::unique_ptr<Node> statement(const std::string& word, const std::string& content) {
    std::vector<Token> tokens = tokenize_expr(content, origin_);
    ExprParser p(std::vector<Token>(tokens.begin() + 1, tokens.end()), where());
    auto n = std::make_unique<Node>();
    if (word == "if") {
      n->kind = Node::If;
      ExprPtr cond = p.expression();
      p.expect_end();
      for (;;) {
        auto b = body({"elif", "else", "endif"});
        n->branches.emplace_back(std::move(cond), std::move(b));
        HYFT_CHECK(i_ < items_.size(), origin_, ": '{% if %}' is not closed by '{% endif %}'");
        const std::string stop = first_word(items_[i_].content);
        std::vector<Token> st = tokenize_expr(items_[i_].content, origin_);
        ++i_;
        if (stop == "endif") break;
        if (stop == "else") {
          n->otherwise = body({"endif"});
          HYFT_CHECK(i_ < items_.size(), origin_, ": '{% if %}' is not closed by '{% endif %}'");
          ++i_;
          break;
        }
        ExprParser q(std::vector<Token>(st.begin() + 1, st.end()), where());
        cond = q.expression();
        q.expect_end();
      }
    } else if (word == "for") {
      n->kind = Node::For;
      n->text = p.expect_name();
      HYFT_CHECK(!p.at_op(","), where(), ": unpacking several loop variables is not supported");
      HYFT_CHECK(p.at_name("in"), where(), ": expected 'in'");
      p.next();
      n->expr = p.or_expr();
      if (p.at_name("if")) {
        p.next();
        n->filter = p.expression();
      }
      HYFT_CHECK(!p.at_name("recursive"), where(), ": recursive loops are not supported");
      p.expect_end();
      n->body = body({"else", "endfor"});
      HYFT_CHECK(i_ < items_.size(), origin_, ": '{% for %}' is not closed by '{% endfor %}'");
      if (first_word(items_[i_++].content) == "else") {
        n->otherwise = body({"endfor"});
        HYFT_CHECK(i_ < items_.size(), origin_, ": '{% for %}' is not closed by '{% endfor %}'");
        ++i_;
      }
    } else if (word == "set") {
      n->kind = Node::Set;
      n->text = p.expect_name();
      if (p.at_op(".")) {
        p.next();
        n->attr = p.expect_name();
      }
      HYFT_CHECK(p.at_op("="), where(), ": block assignments ({% set x %}...{% endset %}) are not supported");
      p.next();
      n->expr = p.expression();
      p.expect_end();
    } else {
      fail(origin_, ": '{% ", word, " %}' is not supported by hyft's chat-template engine (it reads if, for, set)");
    }
    return n;
  }

  std::vector<Item> items_;
  std::string origin_;
  size_t i_ = 0;
};

}  // namespace

std::unique_ptr<Node> parse_template(const std::string& source, const std::string& origin) {
  std::string text = source;  // as Jinja2 with keep_trailing_newline off
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return Parser(split_items(text, origin), origin).parse_all();
}

}  // namespace hyft::tmpl
