#include "data/records.h"

#include "common/error.h"
#include "data/pretokenized.h"
#include "io/json_file.h"
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>

namespace hyft::data {

namespace {

using Special = Segment::Special;

Segment prompt(std::string text) { return {std::move(text), false, Special::None}; }
Segment target(std::string text) { return {std::move(text), true, Special::None}; }
Segment eos() { return {"", true, Special::Eos}; }
Segment bos() { return {"", false, Special::Bos}; }

std::string string_field(const JsonlLine& line, const char* key, bool required = true) {
  const auto& v = line.value;
  if (!v.contains(key) || v[key].is_null()) {
    if (required) line.fail(std::string("missing field '") + key + "'");
    return "";
  }
  if (!v[key].is_string()) line.fail(std::string("'") + key + "' must be a string, got " + v[key].type_name());
  return v[key].get<std::string>();
}

// The Alpaca template (Stanford Alpaca's prompt), loss on the response.
std::vector<Segment> alpaca(const std::string& instruction, const std::string& input, const std::string& output) {
  std::string p = input.empty()
                      ? "Below is an instruction that describes a task. Write a response that appropriately "
                        "completes the request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n"
                      : "Below is an instruction that describes a task, paired with an input that provides "
                        "further context. Write a response that appropriately completes the request.\n\n"
                        "### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n### Response:\n";
  return {prompt(p), target(output), eos()};
}

struct Message {
  std::string role, content;
};

std::vector<Message> messages_of(const JsonlLine& line) {
  const auto& m = line.value["messages"];
  if (!m.is_array() || m.empty()) line.fail("'messages' must be a non-empty list");
  std::vector<Message> out;
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string where = "'messages'[" + std::to_string(i) + "]";
    if (!m[i].is_object()) line.fail(where + " must be an object {\"role\", \"content\"}");
    if (!m[i].contains("role") || !m[i]["role"].is_string()) line.fail(where + " needs a string 'role'");
    if (!m[i].contains("content") || !m[i]["content"].is_string()) line.fail(where + " needs a string 'content'");
    Message msg{m[i]["role"].get<std::string>(), m[i]["content"].get<std::string>()};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      line.fail(where + ": role '" + msg.role + "' is not system, user or assistant");
    if (msg.role == "system" && i != 0) line.fail(where + ": a system message must come first");
    out.push_back(std::move(msg));
  }
  bool any_assistant = false;
  for (const auto& msg : out) any_assistant |= msg.role == "assistant";
  if (!any_assistant) line.fail("'messages' has no assistant turn to learn from");
  return out;
}

// chatml: <|im_start|>role\ncontent<|im_end|>\n; assistant content and its
// <|im_end|> carry the loss, followed by EOS.
std::vector<Segment> chatml(const std::vector<Message>& msgs) {
  std::vector<Segment> s;
  for (const auto& m : msgs) {
    s.push_back(prompt("<|im_start|>" + m.role + "\n" + (m.role == "assistant" ? "" : m.content + "<|im_end|>\n")));
    if (m.role == "assistant") {
      s.push_back(target(m.content + "<|im_end|>"));
      s.push_back(eos());
      s.push_back(prompt("\n"));
    }
  }
  if (!s.empty() && s.back().text == "\n") s.pop_back();
  return s;
}

// llama2: <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ...
std::vector<Segment> llama2(const std::vector<Message>& msgs) {
  std::vector<Segment> s;
  std::string system, pending;
  bool first_turn = true;
  for (const auto& m : msgs) {
    if (m.role == "system") {
      system = m.content;
    } else if (m.role == "user") {
      std::string text = "[INST] ";
      if (first_turn && !system.empty()) text += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
      pending += text + m.content + " [/INST]";
    } else {
      if (!first_turn) s.push_back(bos());
      s.push_back(prompt(pending));
      s.push_back(target(" " + m.content + " "));
      s.push_back(eos());
      pending.clear();
      first_turn = false;
    }
  }
  return s;
}

// alpaca as a chat template: the system text, then ### Instruction / ### Response turns.
std::vector<Segment> alpaca_chat(const std::vector<Message>& msgs) {
  std::vector<Segment> s;
  std::string pending;
  for (const auto& m : msgs) {
    if (m.role == "system") pending += m.content + "\n\n";
    else if (m.role == "user") pending += "### Instruction:\n" + m.content + "\n\n### Response:\n";
    else {
      s.push_back(prompt(pending));
      s.push_back(target(m.content));
      s.push_back(eos());
      pending = "\n\n";
    }
  }
  return s;
}

// `text` as segments carrying `trainable`, the template's BOS and EOS texts in it as
// Token segments (so that any tokenizer maps them to their ids).
void append_template_text(std::vector<Segment>& out, const std::string& text, bool trainable,
                          const ModelChatTemplate& t) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t hit = std::string::npos, len = 0;
    for (const std::string* tok : {&t.bos_token, &t.eos_token}) {
      if (tok->empty()) continue;
      const size_t p = text.find(*tok, pos);
      if (p < hit) hit = p, len = tok->size();
    }
    if (hit == std::string::npos) hit = text.size();
    if (hit > pos) out.push_back({text.substr(pos, hit - pos), trainable, Special::None});
    if (hit == text.size()) break;
    out.push_back({text.substr(hit, len), trainable, Special::Token});
    pos = hit + len;
  }
}

// The model's own template, rendered as transformers' apply_chat_template renders
// it. Which text each assistant turn adds is found by rendering prefixes: the
// conversation up to the turn with the generation prompt, then with the turn; the
// difference is the assistant's (it carries the loss), the rest is prompt.
std::vector<Segment> model_template_chat(const JsonlLine& line, const std::vector<Message>& msgs,
                                         const ModelChatTemplate& t) {
  nlohmann::json all_messages = nlohmann::json::array();
  for (const auto& m : msgs) all_messages.push_back({{"role", m.role}, {"content", m.content}});
  auto render = [&](size_t n, bool generation_prompt) {  // the first n messages
    const nlohmann::json messages(all_messages.begin(), all_messages.begin() + int64_t(n));
    try {
      return t.jinja->render({{"messages", messages}, {"add_generation_prompt", generation_prompt},
                              {"bos_token", t.bos_token}, {"eos_token", t.eos_token}});
    } catch (const UserError& e) {
      line.fail(e.what());
    }
  };
  std::vector<Segment> s;
  std::string done;  // rendered so far
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    const std::string before = render(i, true), with = render(i + 1, false);
    if (before.compare(0, done.size(), done) != 0 || with.compare(0, before.size(), before) != 0)
      line.fail("the model's chat template does not render this conversation so that each turn extends the text "
                "before it, so hyft cannot tell which tokens the assistant wrote; use --chat-template chatml, "
                "llama2 or alpaca");
    append_template_text(s, before.substr(done.size()), false, t);
    append_template_text(s, with.substr(before.size()), true, t);
    done = with;
  }
  if (msgs.back().role != "assistant") {  // turns after the last assistant's: prompt text
    const std::string all = render(msgs.size(), false);
    if (all.size() > done.size()) append_template_text(s, all.substr(done.size()), false, t);
  }
  return s;
}

// --- the table's functions, one set per kind ---------------------------------
std::vector<Segment> render_chat(const JsonlLine& line, const RecordOptions& options) {
  const auto msgs = messages_of(line);
  if (options.chat_template == "model") {
    TORCH_INTERNAL_ASSERT(options.model_template, "--chat-template model: the model's template was not read");
    return model_template_chat(line, msgs, *options.model_template);
  }
  return options.chat_template == "llama2"   ? llama2(msgs)
         : options.chat_template == "alpaca" ? alpaca_chat(msgs)
                                             : chatml(msgs);
}
std::optional<std::string> string_or_absent(const nlohmann::json& v, const char* key) {
  if (!v.contains(key)) return std::nullopt;
  return v[key].is_string() ? v[key].get<std::string>() : "";  // a wrong type fails when rendered
}

std::optional<std::string> chat_completion(const nlohmann::json& v) {
  const auto& m = v["messages"];
  if (!m.is_array() || m.empty() || !m.back().is_object() || m.back().value("role", "") != "assistant")
    return std::nullopt;
  return string_or_absent(m.back(), "content");
}
void set_chat_completion(nlohmann::json& v, const std::string& text) {
  auto& m = v["messages"];
  if (m.is_array() && !m.empty() && m.back().is_object() && m.back().value("role", "") == "assistant")
    m.back()["content"] = text;
  else if (m.is_array())
    m.push_back({{"role", "assistant"}, {"content", text}});
}

std::vector<Segment> render_alpaca(const JsonlLine& line, const RecordOptions&) {
  return alpaca(string_field(line, "instruction"), string_field(line, "input", false), string_field(line, "output"));
}
std::optional<std::string> alpaca_completion(const nlohmann::json& v) { return string_or_absent(v, "output"); }
void set_alpaca_completion(nlohmann::json& v, const std::string& text) { v["output"] = text; }

std::vector<Segment> render_completion(const JsonlLine& line, const RecordOptions&) {
  return {prompt(string_field(line, "prompt")), target(string_field(line, "completion")), eos()};
}
std::optional<std::string> completion_of(const nlohmann::json& v) { return string_or_absent(v, "completion"); }
void set_completion_of(nlohmann::json& v, const std::string& text) { v["completion"] = text; }

std::vector<Segment> render_text(const JsonlLine& line, const RecordOptions&) {
  return {target(string_field(line, "text")), eos()};
}

}  // namespace

const std::vector<RecordKindSpec>& record_kinds() {
  static const std::vector<RecordKindSpec> kinds = {
      {RecordKind::Pretokenized, "input_ids", {"input_ids"}, nullptr, nullptr, nullptr},
      {RecordKind::Chat, "messages", {"messages"}, render_chat, chat_completion, set_chat_completion},
      {RecordKind::Alpaca, "alpaca", {"instruction", "output"}, render_alpaca, alpaca_completion,
       set_alpaca_completion},
      {RecordKind::Completion, "prompt/completion", {"prompt", "completion"}, render_completion, completion_of,
       set_completion_of},
      {RecordKind::Text, "text", {"text"}, render_text, nullptr, nullptr},
  };
  return kinds;
}

const RecordKindSpec& detect_record_kind(const JsonlLine& line) {
  for (const auto& spec : record_kinds())
    for (const char* field : spec.fields)
      if (line.value.contains(field)) return spec;
  line.fail("no known record kind: expected \"text\", \"prompt\"+\"completion\", "
            "\"instruction\"+\"output\", \"messages\" or \"input_ids\"");
}

const char* kind_name(RecordKind kind) {
  for (const auto& spec : record_kinds())
    if (spec.kind == kind) return spec.name;
  return "?";
}

void validate_chat_template(const std::string& name, const std::string& flag) {
  if (name != "chatml" && name != "llama2" && name != "alpaca" && name != "model")
    ::hyft::fail(flag, ": unknown chat template '", name, "'; built in: chatml, llama2, alpaca; or model (the "
                 "chat_template of the model folder's tokenizer_config.json)");
}

ModelChatTemplate read_model_chat_template(const std::string& folder) {
  const std::string path = (std::filesystem::path(folder) / "tokenizer_config.json").string();
  HYFT_CHECK(std::filesystem::exists(path), "--chat-template model: ", folder,
             " has no tokenizer_config.json; name a built-in template (chatml, llama2, alpaca) instead");
  const auto config = io::read_json_file(path, "the tokenizer's settings");
  HYFT_CHECK(config.is_object() && config.contains("chat_template"), path,
             ": no 'chat_template'; --chat-template model needs one (or use chatml, llama2, alpaca)");
  ModelChatTemplate t;
  const auto& ct = config["chat_template"];
  if (ct.is_string()) {
    t.source = ct.get<std::string>();
  } else if (ct.is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const auto& entry : ct)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        t.source = entry["template"].get<std::string>();
    HYFT_CHECK(!t.source.empty(), path, ": 'chat_template' lists templates but none is named \"default\"");
  } else {
    fail(path, ": 'chat_template' must be a string (or a list of {name, template})");
  }
  t.jinja = std::make_shared<const tmpl::Template>(t.source, path + ": chat_template");
  t.bos_token = tokenizer::special_token(config, "bos_token").value_or("");
  t.eos_token = tokenizer::special_token(config, "eos_token").value_or("");
  return t;
}

std::string chat_template_jinja(const std::string& name) {
  validate_chat_template(name, "chat template");
  if (name == "model") return "";  // the model folder keeps its own
  if (name == "llama2")
    return "{{ bos_token }}{% set ns = namespace(first=true, system='', bos_due=false) %}"
           "{% for message in messages %}"
           "{% if message['role'] == 'system' %}{% set ns.system = message['content'] %}"
           "{% elif message['role'] == 'user' %}"
           "{% if ns.bos_due %}{{ bos_token }}{% set ns.bos_due = false %}{% endif %}{{ '[INST] ' }}"
           "{% if ns.first and ns.system %}{{ '<<SYS>>\n' + ns.system + '\n<</SYS>>\n\n' }}{% endif %}"
           "{{ message['content'] + ' [/INST]' }}"
           "{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}"
           "{% set ns.first = false %}{% set ns.bos_due = true %}{% endif %}"
           "{% endfor %}";
  if (name == "alpaca")
    return "{{ bos_token }}{% for message in messages %}"
           "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
           "{% elif message['role'] == 'user' %}"
           "{% if loop.index0 > 0 and messages[loop.index0 - 1]['role'] == 'assistant' %}{{ '\n\n' }}{% endif %}"
           "{{ '### Instruction:\n' + message['content'] + '\n\n### Response:\n' }}"
           "{% else %}{{ message['content'] + eos_token }}{% endif %}"
           "{% endfor %}";
  return "{{ bos_token }}{% for message in messages %}"
         "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' }}"
         "{% if message['role'] == 'assistant' %}{{ eos_token }}{% if not loop.last %}{{ '\n' }}{% endif %}"
         "{% else %}{{ '\n' }}{% endif %}"
         "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
}

namespace {
void collect_strings(const nlohmann::json& v, std::string& out) {
  if (v.is_string()) {
    out += v.get<std::string>();
    out += ' ';
  } else if (v.is_array() || v.is_object()) {
    for (const auto& x : v) collect_strings(x, out);
  }
}
}  // namespace

void write_text_corpus(const std::string& jsonl_path, const std::string& text_path, const RecordOptions& options) {
  std::ofstream out(text_path, std::ios::binary);
  HYFT_CHECK(out, text_path, ": cannot write the corpus");
  read_jsonl(jsonl_path, [&](const JsonlLine& line) {
    std::string text;
    bool rendered = false;
    for (const auto& spec : record_kinds())
      for (const char* field : spec.fields)
        if (!rendered && spec.render && line.value.contains(field)) {
          for (const auto& seg : spec.render(line, options)) text += seg.text;
          rendered = true;
        }
    if (!rendered) collect_strings(line.value, text);
    for (auto& c : text)
      if (c == '\n') c = ' ';
    out << text << '\n';
  });
  HYFT_CHECK(out.flush(), text_path, ": cannot write the corpus");
}

Record parse_record(const JsonlLine& line, const RecordOptions& options, int64_t vocab_size) {
  const auto& v = line.value;
  const RecordKindSpec& spec = detect_record_kind(line);
  Record r;
  r.kind = spec.kind;
  if (spec.render) r.segments = spec.render(line, options);
  else r.pretokenized = parse_pretokenized(line, vocab_size);
  r.add_bos = !(spec.kind == RecordKind::Chat && options.chat_template == "model");  // the template writes it
  const std::string& wf = options.weight_field;
  if (v.contains(wf) && !v[wf].is_null()) {
    if (!v[wf].is_number() || !(v[wf].get<double>() > 0))
      line.fail("'" + wf + "' must be a number > 0, got " + v[wf].dump());
    r.weight = v[wf].get<double>();
  }
  if (v.contains(options.label_field) && !v[options.label_field].is_null()) {
    const auto& l = v[options.label_field];
    if (l.is_string()) r.label = l.get<std::string>();
    else if (l.is_number_integer() || l.is_boolean()) r.label = l.dump();
    else line.fail("label field '" + options.label_field + "' must be a string, integer or boolean");
  }
  return r;
}

}  // namespace hyft::data
