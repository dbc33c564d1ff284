#include "template/jinja.h"

#include "common/error.h"
#include "common/strings.h"
#include "template/jinja_syntax.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
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
      if (j.is_string()) return {json(int64_t(char_count(j.get_ref<const std::string&>())))};  // characters
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
        auto bound = [&](const std::unique_ptr<Expr>& x, int64_t dflt) {
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

Template::Template(const std::string& source, const std::string& origin)
    : origin_(origin), root_(parse_template(source, origin)) {}
Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::json& context) const {
  std::string out;
  Renderer(origin_, context).run(*root_, out);
  return out;
}

}  // namespace hyft::tmpl
