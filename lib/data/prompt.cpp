#include "data/prompt.h"

#include "data/dataset.h"

namespace hyft::data {

PromptRecord prompt_of(const JsonlLine& line, const RecordOptions& options, const tokenizer::Tokenizer& tok) {
  nlohmann::json v = line.value;
  if (v.contains("messages") && v["messages"].is_array() && !v["messages"].empty() &&
      v["messages"].back().value("role", "") != "assistant")
    v["messages"].push_back({{"role", "assistant"}, {"content", ""}});
  if (v.contains("prompt") && !v.contains("completion")) v["completion"] = "";
  if (v.contains("instruction") && !v.contains("output")) v["output"] = "";
  Record r = parse_record(JsonlLine{line.file, line.line, v}, options, tok.vocab_size());
  if (r.kind == RecordKind::Pretokenized) line.fail("generation needs text records, not input_ids");

  PromptRecord out;
  out.label = r.label;
  if (r.kind == RecordKind::Text) {
    r.segments.pop_back();  // the whole text is the prompt, without EOS
  } else {
    // Cut before the last trainable text: the completion to predict.
    size_t last = r.segments.size();
    for (size_t i = 0; i < r.segments.size(); ++i)
      if (r.segments[i].trainable && r.segments[i].special == Segment::Special::None) last = i;
    r.segments.resize(last);
    // The completion as the record wrote it (templates may wrap it, as chatml does).
    if (r.kind == RecordKind::Chat) out.completion = v["messages"].back()["content"].get<std::string>();
    else if (r.kind == RecordKind::Alpaca) out.completion = v["output"].get<std::string>();
    else out.completion = v["completion"].get<std::string>();
  }
  out.ids = tokenize_record(r, &tok, false).input_ids;
  return out;
}

}  // namespace hyft::data
