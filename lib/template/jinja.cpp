#include "template/jinja.h"

#include "common/error.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <vector>

namespace hyft::tmpl {

using json = nlohmann::json;

namespace {

// --- values -----------------------------------------------------------------
// A Jinja value: JSON, or undefined (a name or key that does not exist).
struct Value {
  json j;
  bool undefined = false;
  static Value undef() { return {json(), true}; }
};

[[noreturn]] void render_error(const std::string& what) { throw UserError(what); }

bool truthy(const Value& v) {
  if (v.undefined) return false;
  const json& j = v.j;
  switch (j.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return j.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return j.get<int64_t>() != 0;
    case json::value_t::number_float: return j.get<double>() != 0.0;
    case json::value_t::string: return !j.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !j.empty();
    default: return false;
  }
}

std::string float_repr(double d) {  // Python's repr of a float
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string python_repr(const json& j);

// str(x) as Jinja prints it.
std::string to_text(const Value& v) {
  if (v.undefined) return "";
  const json& j = v.j;
  switch (j.type()) {
    case json::value_t::string: return j.get<std::string>();
    case json::value_t::null: return "None";
    case json::value_t::boolean: return j.get<bool>() ? "True" : "False";
    case json::value_t::number_float: return float_repr(j.get<double>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return std::to_string(j.get<int64_t>());
    default: return python_repr(j);
  }
}

std::string quote_python(const std::string& s) {
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') out += '\\';
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + q;
}

std::string python_repr(const json& j) {
  if (j.is_string()) return quote_python(j.get<std::string>());
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + python_repr(j[i]);
    return s + "]";
  }
  if (j.is_object()) {
    std::string s = "{";
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      s += (first ? "" : ", ") + quote_python(k) + ": " + python_repr(v);
      first = false;
    }
    return s + "}";
  }
  return to_text({j, false});
}

// json.dumps(x, ensure_ascii=False) with Python's separators (", " and ": "), or an indent.
void python_json(const json& j, int indent, int depth, std::string& out) {
  const std::string nl = indent > 0 ? "\n" + std::string(size_t(indent * (depth + 1)), ' ') : "";
  const std::string close = indent > 0 ? "\n" + std::string(size_t(indent * depth), ' ') : "";
  const char* sep = indent > 0 ? "," : ", ";
  if (j.is_array() && !j.empty()) {
    out += "[";
    for (size_t i = 0; i < j.size(); ++i) {
      out += (i ? sep : "") + nl;
      python_json(j[i], indent, depth + 1, out);
    }
    out += close + "]";
  } else if (j.is_object() && !j.empty()) {
    out += "{";
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      out += (first ? "" : sep) + nl + json(k).dump() + ": ";
      python_json(v, indent, depth + 1, out);
      first = false;
    }
    out += close + "}";
  } else if (j.is_number_float()) {
    out += float_repr(j.get<double>());
  } else {
    out += j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
  }
}

const char* kWhitespace = " \t\n\r\f\v";
std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  if (right) e = s.find_last_not_of(chars) + 1;
  return s.substr(b, e - b);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

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

}  // namespace

// --- syntax tree ---------------------------------------------------------------
struct Expr {
  enum Kind { Literal, Name, Attr, Index, Slice, Call, Filter, Test, Not, Neg, Binary, Ternary, List, Dict } kind;
  json literal;
  std::string name;  // Name, Attr, Filter, Test, Binary's operator
  bool negate = false;  // Test: "is not"
  std::vector<std::unique_ptr<Expr>> args;  // operands, then call/filter arguments
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
};

struct Node {
  enum Kind { Body, Text, Output, If, For, Set } kind = Body;
  std::string text;                                   // Text; Set's and For's names
  std::string attr;                                   // Set: ns.attr
  std::unique_ptr<Expr> expr, filter;                 // Output/Set value, For's iterable and condition
  std::vector<std::pair<std::unique_ptr<Expr>, std::unique_ptr<Node>>> branches;  // If
  std::unique_ptr<Node> body, otherwise;              // For, If's else
  std::vector<std::unique_ptr<Node>> children;        // Body
};

namespace {

using ExprPtr = std::unique_ptr<Expr>;

ExprPtr make(Expr::Kind k) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
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
      auto n = make(Expr::Not);
      n->args.push_back(not_expr());
      return n;
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
      auto b = make(Expr::Binary);
      b->name = op;
      b->args.push_back(std::move(left));
      b->args.push_back(math1());
      left = std::move(b);
    }
  }
  ExprPtr math1() { return binary_chain({"+", "-"}, [this] { return concat(); }, false); }
  ExprPtr concat() { return binary_chain({"~"}, [this] { return math2(); }, false); }
  ExprPtr math2() { return binary_chain({"*", "/", "//", "%"}, [this] { return unary(); }, false); }
  ExprPtr unary() {
    if (at_op("-")) {
      ++i_;
      auto n = make(Expr::Neg);
      n->args.push_back(unary());
      return n;
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
      auto b = make(Expr::Binary);
      b->name = op;
      b->args.push_back(std::move(left));
      b->args.push_back(operand());
      left = std::move(b);
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

// --- evaluation ------------------------------------------------------------------
class Renderer {
 public:
  Renderer(const std::string& origin, const json& context) : origin_(origin) {
    frames_.push_back(std::map<std::string, json>());
    for (const auto& [k, v] : context.items()) frames_.back()[k] = v;
  }

  void run(const Node& n, std::string& out) {
    switch (n.kind) {
      case Node::Body:
        for (const auto& c : n.children) run(*c, out);
        break;
      case Node::Text: out += n.text; break;
      case Node::Output: out += to_text(eval(*n.expr)); break;
      case Node::If:
        for (const auto& [cond, body] : n.branches)
          if (truthy(eval(*cond))) return run(*body, out);
        if (n.otherwise) run(*n.otherwise, out);
        break;
      case Node::For: run_for(n, out); break;
      case Node::Set: {
        Value v = eval(*n.expr);
        if (n.attr.empty()) {
          frames_.back()[n.text] = v.j;
          return;
        }
        json* target = lookup(n.text);
        if (!target || !target->is_object()) error("'" + n.text + "' is not a namespace; cannot set ." + n.attr);
        (*target)[n.attr] = v.j;
        break;
      }
    }
  }

 private:
  [[noreturn]] void error(const std::string& what) const { render_error(origin_ + ": " + what); }

  json* lookup(const std::string& name) {
    for (auto f = frames_.rbegin(); f != frames_.rend(); ++f) {
      const auto it = f->find(name);
      if (it != f->end()) return &it->second;
    }
    return nullptr;
  }

  void run_for(const Node& n, std::string& out) {
    Value seq = eval(*n.expr);
    std::vector<json> items;
    if (seq.j.is_array()) items.assign(seq.j.begin(), seq.j.end());
    else if (seq.j.is_object()) for (const auto& [k, v] : seq.j.items()) items.push_back(k);
    else if (seq.j.is_string()) for (char c : seq.j.get<std::string>()) items.push_back(std::string(1, c));
    else if (!seq.undefined && !seq.j.is_null()) error("cannot loop over " + to_text(seq));
    if (n.filter) {
      std::vector<json> kept;
      for (auto& x : items) {
        frames_.push_back({{n.text, x}});
        if (truthy(eval(*n.filter))) kept.push_back(x);
        frames_.pop_back();
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      if (n.otherwise) run(*n.otherwise, out);
      return;
    }
    const int64_t len = int64_t(items.size());
    for (int64_t i = 0; i < len; ++i) {
      json loop = {{"index", i + 1}, {"index0", i},     {"first", i == 0},       {"last", i == len - 1},
                   {"length", len},  {"revindex", len - i}, {"revindex0", len - i - 1}};
      loop["previtem"] = i > 0 ? items[size_t(i - 1)] : json();
      loop["nextitem"] = i + 1 < len ? items[size_t(i + 1)] : json();
      frames_.push_back({{n.text, items[size_t(i)]}, {"loop", loop}});
      run(*n.body, out);
      frames_.pop_back();
    }
  }

  static std::string type_name(const Value& v) { return v.undefined ? "undefined" : v.j.type_name(); }

  Value call_method(const Value& self, const std::string& m, const std::vector<Value>& a) {
    auto arg = [&](size_t i) -> std::string {
      if (i >= a.size() || !a[i].j.is_string()) error("." + m + "() needs a string argument");
      return a[i].j.get<std::string>();
    };
    if (self.j.is_string()) {
      const std::string s = self.j.get<std::string>();
      const std::string chars = a.empty() || a[0].j.is_null() ? kWhitespace : arg(0);
      if (m == "strip") return {strip(s, chars, true, true)};
      if (m == "lstrip") return {strip(s, chars, true, false)};
      if (m == "rstrip") return {strip(s, chars, false, true)};
      if (m == "startswith") return {json(s.rfind(arg(0), 0) == 0)};
      if (m == "endswith") {
        const std::string x = arg(0);
        return {json(s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0)};
      }
      if (m == "upper" || m == "lower") {
        std::string r = s;
        for (char& c : r) c = char(m == "upper" ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
        return {r};
      }
      if (m == "replace") return {replace_all(s, arg(0), arg(1))};
      if (m == "split") {
        json parts = json::array();
        if (a.empty()) {
          size_t p = 0;
          while ((p = s.find_first_not_of(kWhitespace, p)) != std::string::npos) {
            const size_t e = s.find_first_of(kWhitespace, p);
            parts.push_back(s.substr(p, e - p));
            p = e;
          }
        } else {
          const std::string sep = arg(0);
          size_t p = 0;
          for (size_t e; (e = s.find(sep, p)) != std::string::npos; p = e + sep.size()) parts.push_back(s.substr(p, e - p));
          parts.push_back(s.substr(p));
        }
        return {parts};
      }
    }
    if (self.j.is_object()) {
      if (m == "get") {
        const std::string k = arg(0);
        return self.j.contains(k) ? Value{self.j[k]} : a.size() > 1 ? a[1] : Value{json()};
      }
      if (m == "items") {
        json r = json::array();
        for (const auto& [k, v] : self.j.items()) r.push_back(json::array({k, v}));
        return {r};
      }
      if (m == "keys" || m == "values") {
        json r = json::array();
        for (const auto& [k, v] : self.j.items()) r.push_back(m == "keys" ? json(k) : v);
        return {r};
      }
    }
    error("the method ." + m + "() of a " + type_name(self) + " is not supported");
  }

  Value apply_filter(const std::string& f, const Value& x, const std::vector<Value>& a,
                     const std::map<std::string, Value>& kw) {
    const json& j = x.j;
    if (f == "default" || f == "d") {
      const bool boolean = (a.size() > 1 && truthy(a[1])) || (kw.count("boolean") && truthy(kw.at("boolean")));
      if (x.undefined || (boolean && !truthy(x))) return a.empty() ? Value{json("")} : a[0];
      return x;
    }
    if (x.undefined) error("the filter |" + f + " got an undefined value");
    if (f == "safe" || f == "list") return f == "list" && j.is_string() ? apply_filter("list", Value{json(to_text(x))}, a, kw) : x;
    if (f == "trim") return {strip(to_text(x), a.empty() ? kWhitespace : to_text(a[0]), true, true)};
    if (f == "upper" || f == "lower") return call_method({json(to_text(x))}, f, {});
    if (f == "capitalize" || f == "title") {
      std::string s = to_text(x);
      bool start = true;
      for (char& c : s) {
        const bool alpha = std::isalpha(static_cast<unsigned char>(c));
        c = char(start && alpha ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
        start = f == "title" ? !alpha : false;
      }
      return {s};
    }
    if (f == "length" || f == "count") {
      if (j.is_string()) {  // characters, not bytes
        int64_t n = 0;
        for (unsigned char c : j.get_ref<const std::string&>()) n += (c & 0xC0) != 0x80;
        return {json(n)};
      }
      return {json(int64_t(j.size()))};
    }
    if (f == "first" || f == "last") {
      if (!j.is_array() || j.empty()) return Value::undef();
      return {f == "first" ? j.front() : j.back()};
    }
    if (f == "string") return {to_text(x)};
    if (f == "int") {
      if (j.is_number()) return {json(int64_t(j.get<double>()))};
      try {
        return {json(std::stoll(to_text(x)))};
      } catch (const std::exception&) {
        return {json(0)};
      }
    }
    if (f == "float") return {json(j.is_number() ? j.get<double>() : 0.0)};
    if (f == "join") {
      if (!j.is_array()) error("|join needs a list");
      std::string out, sep = a.empty() ? "" : to_text(a[0]);
      for (size_t i = 0; i < j.size(); ++i) out += (i ? sep : "") + to_text({j[i]});
      return {out};
    }
    if (f == "replace") {
      if (a.size() < 2) error("|replace needs two arguments");
      return {replace_all(to_text(x), to_text(a[0]), to_text(a[1]))};
    }
    if (f == "items") return call_method(x, "items", {});
    if (f == "tojson") {
      std::string out;
      const Value* indent = kw.count("indent") ? &kw.at("indent") : a.empty() ? nullptr : &a[0];
      python_json(j, indent && indent->j.is_number() ? indent->j.get<int>() : 0, 0, out);
      return {out};
    }
    error("the filter |" + f + " is not supported");
  }

  bool test(const std::string& t, const Value& x) {
    const json& j = x.j;
    if (t == "defined") return !x.undefined;
    if (t == "undefined") return x.undefined;
    if (x.undefined) return false;
    if (t == "none") return j.is_null();
    if (t == "string") return j.is_string();
    if (t == "number") return j.is_number();
    if (t == "integer") return j.is_number_integer();
    if (t == "boolean") return j.is_boolean();
    if (t == "true") return j.is_boolean() && j.get<bool>();
    if (t == "false") return j.is_boolean() && !j.get<bool>();
    if (t == "mapping") return j.is_object();
    if (t == "sequence" || t == "iterable") return j.is_array() || j.is_string() || j.is_object();
    if (t == "odd" || t == "even") return j.is_number_integer() && (j.get<int64_t>() % 2 != 0) == (t == "odd");
    error("the test 'is " + t + "' is not supported");
  }

  static bool is_int(const json& j) { return j.is_number_integer() || j.is_number_unsigned(); }

  Value binary(const std::string& op, const Value& l, const Value& r) {
    const json &a = l.j, &b = r.j;
    if (op == "==") return {json(l.undefined == r.undefined && a == b)};
    if (op == "!=") return {json(!(l.undefined == r.undefined && a == b))};
    if (op == "~") return {to_text(l) + to_text(r)};
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string()) found = a.is_string() && b.get<std::string>().find(a.get<std::string>()) != std::string::npos;
      else if (b.is_array()) found = std::find(b.begin(), b.end(), a) != b.end();
      else if (b.is_object()) found = a.is_string() && b.contains(a.get<std::string>());
      else error("'in' needs a string, list or mapping on its right");
      return {json(found == (op == "in"))};
    }
    if (l.undefined || r.undefined) error("'" + op + "' on an undefined value");
    if (op == "+" && a.is_string() && b.is_string()) return {a.get<std::string>() + b.get<std::string>()};
    if (op == "+" && a.is_array() && b.is_array()) {
      json c = a;
      c.insert(c.end(), b.begin(), b.end());
      return {c};
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      if (!((a.is_number() && b.is_number()) || (a.is_string() && b.is_string())))
        error("cannot compare a " + type_name(l) + " with a " + type_name(r));
      const bool lt = a < b, gt = b < a;
      return {json(op == "<" ? lt : op == ">" ? gt : op == "<=" ? !gt : !lt)};
    }
    if (op == "*" && a.is_string() && is_int(b)) {
      std::string s;
      for (int64_t i = 0; i < b.get<int64_t>(); ++i) s += a.get<std::string>();
      return {s};
    }
    if (!a.is_number() || !b.is_number()) error("'" + op + "' on a " + type_name(l) + " and a " + type_name(r));
    if (is_int(a) && is_int(b) && op != "/") {
      const int64_t x = a.get<int64_t>(), y = b.get<int64_t>();
      if ((op == "//" || op == "%") && y == 0) error("division by zero");
      if (op == "+") return {json(x + y)};
      if (op == "-") return {json(x - y)};
      if (op == "*") return {json(x * y)};
      const int64_t q = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));  // Python's floor division
      return {json(op == "//" ? q : x - q * y)};
    }
    const double x = a.get<double>(), y = b.get<double>();
    if (op == "+") return {json(x + y)};
    if (op == "-") return {json(x - y)};
    if (op == "*") return {json(x * y)};
    if (y == 0.0) error("division by zero");
    if (op == "/") return {json(x / y)};
    if (op == "//") return {json(std::floor(x / y))};
    return {json(x - std::floor(x / y) * y)};
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Literal: return {e.literal};
      case Expr::Name: {
        const json* v = lookup(e.name);
        return v ? Value{*v} : Value::undef();
      }
      case Expr::List: {
        json a = json::array();
        for (const auto& x : e.args) a.push_back(eval(*x).j);
        return {a};
      }
      case Expr::Dict: {
        json d = json::object();
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) d[to_text(eval(*e.args[i]))] = eval(*e.args[i + 1]).j;
        return {d};
      }
      case Expr::Attr:
      case Expr::Index: {
        const Value base = eval(*e.args[0]);
        if (base.undefined) error("'" + (e.kind == Expr::Attr ? e.name : std::string("[...]")) + "' of an undefined value");
        const Value key = e.kind == Expr::Attr ? Value{json(e.name)} : eval(*e.args[1]);
        if (base.j.is_object() && key.j.is_string())
          return base.j.contains(key.j.get<std::string>()) ? Value{base.j[key.j.get<std::string>()]} : Value::undef();
        if ((base.j.is_array() || base.j.is_string()) && is_int(key.j)) {
          const int64_t n = base.j.is_array() ? int64_t(base.j.size()) : int64_t(base.j.get_ref<const std::string&>().size());
          int64_t i = key.j.get<int64_t>();
          if (i < 0) i += n;
          if (i < 0 || i >= n) return Value::undef();
          return base.j.is_array() ? Value{base.j[size_t(i)]} : Value{json(base.j.get<std::string>().substr(size_t(i), 1))};
        }
        return Value::undef();
      }
      case Expr::Slice: {
        const Value base = eval(*e.args[0]);
        if (!base.j.is_array() && !base.j.is_string()) error("slicing a " + type_name(base));
        const int64_t n = base.j.is_array() ? int64_t(base.j.size()) : int64_t(base.j.get_ref<const std::string&>().size());
        auto bound = [&](const ExprPtr& x, int64_t dflt) {
          if (!x) return dflt;
          const Value v = eval(*x);
          if (v.j.is_null()) return dflt;
          if (!is_int(v.j)) error("a slice bound must be an integer");
          int64_t i = v.j.get<int64_t>();
          if (i < 0) i += n;
          return std::clamp<int64_t>(i, 0, n);
        };
        const int64_t lo = bound(e.args[1], 0), hi = std::max(lo, bound(e.args[2], n));
        if (base.j.is_string()) return {json(base.j.get<std::string>().substr(size_t(lo), size_t(hi - lo)))};
        return {json(std::vector<json>(base.j.begin() + lo, base.j.begin() + hi))};
      }
      case Expr::Call: {
        std::vector<Value> a;
        for (size_t i = 1; i < e.args.size(); ++i) a.push_back(eval(*e.args[i]));
        const Expr& callee = *e.args[0];
        if (callee.kind == Expr::Name && callee.name == "raise_exception")
          render_error(origin_ + ": the chat template refused the conversation: " + (a.empty() ? "" : to_text(a[0])));
        if (callee.kind == Expr::Name && callee.name == "namespace") {
          json ns = json::object();
          for (const auto& [k, v] : e.kwargs) ns[k] = eval(*v).j;
          return {ns};
        }
        if (callee.kind == Expr::Name && callee.name == "range") {
          json r = json::array();
          const int64_t lo = a.size() > 1 ? a[0].j.get<int64_t>() : 0, hi = a.empty() ? 0 : a.back().j.get<int64_t>();
          for (int64_t i = lo; i < hi; ++i) r.push_back(i);
          return {r};
        }
        if (callee.kind == Expr::Attr) return call_method(eval(*callee.args[0]), callee.name, a);
        error("calling '" + (callee.kind == Expr::Name ? callee.name : std::string("an expression")) +
              "' is not supported (raise_exception, namespace, range and string methods are)");
      }
      case Expr::Filter: {
        std::vector<Value> a;
        std::map<std::string, Value> kw;
        for (size_t i = 1; i < e.args.size(); ++i) a.push_back(eval(*e.args[i]));
        for (const auto& [k, v] : e.kwargs) kw[k] = eval(*v);
        return apply_filter(e.name, eval(*e.args[0]), a, kw);
      }
      case Expr::Test: return {json(test(e.name, eval(*e.args[0])) != e.negate)};
      case Expr::Not: return {json(!truthy(eval(*e.args[0])))};
      case Expr::Neg: {
        const Value v = eval(*e.args[0]);
        if (!v.j.is_number()) error("'-' on a " + type_name(v));
        return is_int(v.j) ? Value{json(-v.j.get<int64_t>())} : Value{json(-v.j.get<double>())};
      }
      case Expr::Ternary: {
        if (truthy(eval(*e.args[1]))) return eval(*e.args[0]);
        return e.args.size() > 2 ? eval(*e.args[2]) : Value::undef();
      }
      case Expr::Binary: {
        if (e.name == "and" || e.name == "or") {
          Value l = eval(*e.args[0]);
          if (truthy(l) == (e.name == "or")) return l;
          return eval(*e.args[1]);
        }
        return binary(e.name, eval(*e.args[0]), eval(*e.args[1]));
      }
    }
    error("internal: unknown expression");
  }

  std::string origin_;
  std::vector<std::map<std::string, json>> frames_;
};

}  // namespace

Template::Template(const std::string& source, const std::string& origin) : origin_(origin) {
  // As Jinja2 (keep_trailing_newline off): one newline at the very end is dropped.
  std::string text = source;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  root_ = Parser(split_items(text, origin), origin).parse_all();
}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::json& context) const {
  std::string out;
  Renderer(origin_, context).run(*root_, out);
  return out;
}

}  // namespace hyft::tmpl
