// The chat-template engine against transformers' own renderer (the one behind
// apply_chat_template): the public templates of DeepSeek-LLM chat, DeepSeek-Coder
// instruct, Llama 3, Qwen2, Mistral and Zephyr (test/data/chat_templates) over
// conversations with and without a system message and a generation prompt, and
// refusals of what the engine does not read.
#include "support/catch.h"
#include "support/process.h"

#include "common/error.h"
#include "template/jinja.h"

#include <nlohmann/json.hpp>


namespace {

std::string refusal(const std::string& source) {
  try {
    hyft::tmpl::Template t(source, "t.jinja");
    t.render({{"messages", nlohmann::json::array()}});
  } catch (const hyft::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("chat templates render as transformers' apply_chat_template renders them", "[template]") {
  const std::string dir = std::string(HYFT_SOURCE_DIR) + "/test/data/chat_templates";
  const auto r = hyft::test::run(std::string(HYFT_PYTHON) + " " + HYFT_SOURCE_DIR +
                                 "/test/python/chat_template_reference.py " + dir);
  REQUIRE(r.exit_code == 0);
  const auto rows = nlohmann::json::parse(r.out);
  const auto conversations = nlohmann::json::parse(hyft::test::read_text(dir + "/conversations.json"));
  REQUIRE(rows.size() == 60);
  int same = 0, refused = 0;
  for (const auto& row : rows) {
    const std::string name = row["template"];
    hyft::tmpl::Template t(hyft::test::read_text(dir + "/" + name), name);
    const nlohmann::json context = {{"messages", conversations[row["conversation"].get<size_t>()]},
                                    {"add_generation_prompt", row["add_generation_prompt"]},
                                    {"bos_token", "<BOS>"},
                                    {"eos_token", "<EOS>"}};
    INFO(name << ", conversation " << row["conversation"] << ", add_generation_prompt "
              << row["add_generation_prompt"]);
    if (row.contains("error")) {
      // raise_exception: refused with the template's own message.
      std::string message;
      try {
        t.render(context);
      } catch (const hyft::UserError& e) {
        message = e.what();
      }
      REQUIRE(message.find(row["error"].get<std::string>()) != std::string::npos);
      ++refused;
    } else {
      REQUIRE(t.render(context) == row["text"].get<std::string>());
      ++same;
    }
  }
  std::printf("chat templates: %d renderings equal to transformers', %d refusals equal\n", same, refused);
  REQUIRE(refused == 4);
}

TEST_CASE("the template engine's expressions follow Jinja", "[template]") {
  const auto render = [](const std::string& src, const nlohmann::json& ctx = nlohmann::json::object()) {
    return hyft::tmpl::Template(src, "t").render(ctx);
  };
  REQUIRE(render("{{ 'a' ~ 1 ~ none }}|{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 1 / 2 }}") == "a1None|3 -4 1 0.5");
  REQUIRE(render("{{ x | default('d') }}{{ [1, 2, 3] | length }}{{ 'héllo' | length }}") == "d35");
  REQUIRE(render("{% for m in xs if m > 1 %}{{ loop.index }}:{{ m }}{% if not loop.last %},{% endif %}{% endfor %}",
                 {{"xs", {1, 2, 3}}}) == "1:2,2:3");
  REQUIRE(render("{{ xs[1:] }} {{ xs[-1] }} {{ 'abc'[1] }}", {{"xs", {1, 2, 3}}}) == "[2, 3] 3 b");
  REQUIRE(render("{{ '  x  '.strip() }}{{ 'a,b'.split(',') | join('+') }}{{ 'Ab'.upper() }}") == "xa+bAB");
  REQUIRE(render("{{ d | tojson }}", {{"d", {{"a", {1, 2}}, {"b", "é"}}}}) == "{\"a\": [1, 2], \"b\": \"é\"}");
  REQUIRE(render("{{ 'y' if x is defined else 'n' }}{{ 'y' if none is none }}") == "ny");
  // trim_blocks and lstrip_blocks, as transformers configures Jinja.
  REQUIRE(render("a\n  {% if true %}\nb\n  {% endif %}\nc") == "a\nb\nc");
  REQUIRE(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}") == "1");
}

TEST_CASE("the template engine refuses what it does not read, by name", "[template]") {
  REQUIRE(refusal("{% macro f() %}x{% endmacro %}").find("macro") != std::string::npos);
  REQUIRE(refusal("{{ xs | map('upper') }}").find("|map") != std::string::npos);
  REQUIRE(refusal("{% if true %}x").find("endif") != std::string::npos);
  REQUIRE(refusal("{{ 'x'.zfill(3) }}").find(".zfill()") != std::string::npos);
  REQUIRE(refusal("{% for a, b in xs %}{% endfor %}").find("unpacking") != std::string::npos);
  REQUIRE(refusal("{{ x is divisibleby(3) }}").find("divisibleby") != std::string::npos);
  REQUIRE(refusal("{{ raise_exception('no system role') }}").find("no system role") != std::string::npos);
}
