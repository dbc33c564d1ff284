#include "data/records.h"

#include "common/error.h"
#include "data/pretokenized.h"

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

}  // namespace

const char* kind_name(RecordKind kind) {
  switch (kind) {
    case RecordKind::Text: return "text";
    case RecordKind::Completion: return "prompt/completion";
    case RecordKind::Alpaca: return "alpaca";
    case RecordKind::Chat: return "messages";
    case RecordKind::Pretokenized: return "input_ids";
  }
  return "?";
}

void validate_chat_template(const std::string& name, const std::string& flag) {
  if (name != "chatml" && name != "llama2" && name != "alpaca")
    ::hyft::fail(flag, ": unknown chat template '", name, "'; built in: chatml, llama2, alpaca");
}

Record parse_record(const JsonlLine& line, const RecordOptions& options, int64_t vocab_size) {
  const auto& v = line.value;
  Record r;
  if (v.contains("input_ids")) {
    r.kind = RecordKind::Pretokenized;
    r.pretokenized = parse_pretokenized(line, vocab_size);
  } else if (v.contains("messages")) {
    r.kind = RecordKind::Chat;
    const auto msgs = messages_of(line);
    r.segments = options.chat_template == "llama2"   ? llama2(msgs)
                 : options.chat_template == "alpaca" ? alpaca_chat(msgs)
                                                     : chatml(msgs);
  } else if (v.contains("instruction") || v.contains("output")) {
    r.kind = RecordKind::Alpaca;
    r.segments = alpaca(string_field(line, "instruction"), string_field(line, "input", false),
                        string_field(line, "output"));
  } else if (v.contains("prompt") || v.contains("completion")) {
    r.kind = RecordKind::Completion;
    r.segments = {prompt(string_field(line, "prompt")), target(string_field(line, "completion")), eos()};
  } else if (v.contains("text")) {
    r.kind = RecordKind::Text;
    r.segments = {target(string_field(line, "text")), eos()};
  } else {
    line.fail("no known record kind: expected \"text\", \"prompt\"+\"completion\", "
              "\"instruction\"+\"output\", \"messages\" or \"input_ids\"");
  }
  if (v.contains("weight") && !v["weight"].is_null()) {
    if (!v["weight"].is_number() || !(v["weight"].get<double>() > 0))
      line.fail("'weight' must be a number > 0, got " + v["weight"].dump());
    r.weight = v["weight"].get<double>();
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
