// The syntax tree of hyft's Jinja subset (template/jinja.h) and its parser: a
// template's text split into text, {{ expressions }} and {% statements %} with
// Jinja2's whitespace rules (trim_blocks, lstrip_blocks, the - controls), then
// parsed by recursive descent in Jinja2's operator precedence. What the engine
// does not read is refused here, by name, before anything renders.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hyft::tmpl {

inline const char* const kWhitespace = " \t\n\r\f\v";

// s without leading (left) and/or trailing (right) characters of `chars`.
inline std::string strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) b = s.find_first_not_of(chars);
  if (b == std::string::npos) return "";
  if (right) e = s.find_last_not_of(chars) + 1;
  return s.substr(b, e - b);
}

struct Expr {
  enum Kind { Literal, Name, Attr, Index, Slice, Call, Filter, Test, Not, Neg, Binary, Ternary, List, Dict } kind;
  nlohmann::json literal;
  std::string name;     // Name, Attr, Filter, Test, Binary's operator
  bool negate = false;  // Test: "is not"
  std::vector<std::unique_ptr<Expr>> args;  // operands, then call/filter arguments
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
};

struct Node {
  enum Kind { Body, Text, Output, If, For, Set } kind = Body;
  std::string text;                    // Text; Set's and For's names
  std::string attr;                    // Set: ns.attr
  std::unique_ptr<Expr> expr, filter;  // Output/Set value, For's iterable and condition
  std::vector<std::pair<std::unique_ptr<Expr>, std::unique_ptr<Node>>> branches;  // If
  std::unique_ptr<Node> body, otherwise;  // For, If's else
  std::vector<std::unique_ptr<Node>> children;  // Body
};

// The tree of `source` (one trailing newline dropped, as Jinja2 does); a UserError
// naming `origin` and the construct for what the engine does not read.
std::unique_ptr<Node> parse_template(const std::string& source, const std::string& origin);

}  // namespace hyft::tmpl
