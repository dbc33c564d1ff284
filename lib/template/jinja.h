// A small Jinja engine for chat templates (tokenizer_config.json's
// "chat_template"), rendering as transformers' apply_chat_template does: Jinja2
// with trim_blocks and lstrip_blocks, the globals raise_exception and namespace.
//
// What it reads: text, {{ expr }}, {% if/elif/else %}, {% for x in seq [if cond] %}
// (with loop.index, index0, first, last, length, revindex, revindex0 and
// {% else %}), {% set name = expr %} and {% set ns.attr = expr %}, comments, the
// whitespace controls {%- -%} {{- -}} {#- -#}; expressions with literals, lists,
// dicts, names, .attr, [index], [a:b], calls, filters (trim, upper, lower,
// capitalize, title, length, count, first, last, default, string, int, float,
// join, replace, tojson, list, items, safe), tests (defined, undefined, none,
// string, number, integer, boolean, mapping, sequence, iterable, odd, even,
// true, false), `a if c else b`, or/and/not, comparisons, in / not in, + - * /
// // % ~, and the string methods templates call (strip, lstrip, rstrip, split,
// startswith, endswith, upper, lower, title, replace; dict get, items, keys,
// values). Anything else (macros, call blocks, filters it lacks, ...) is refused
// when the template is parsed (template/jinja_syntax.h, the tree and its parser),
// with the construct named: never rendered differently.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace hyft::tmpl {

struct Node;

class Template {
 public:
  // Parses `source`; a UserError naming `origin` (e.g. "model/tokenizer_config.json:
  // chat_template") and the construct for what this engine does not read.
  Template(const std::string& source, const std::string& origin);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // The output for `context` (an object: messages, add_generation_prompt,
  // bos_token, eos_token, ...). raise_exception(msg) and errors while rendering
  // are UserErrors naming the origin.
  std::string render(const nlohmann::json& context) const;

 private:
  std::string origin_;
  std::unique_ptr<Node> root_;
};

}  // namespace hyft::tmpl
