#include "data/prompt.h"

#include "data/dataset.h"

namespace hyft::data {

PromptRecord prompt_of(const JsonlLine& line, const RecordOptions& options, const tokenizer::Tokenizer& tok) {
  const RecordKindSpec& spec = detect_record_kind(line);
  if (spec.kind == RecordKind::Pretokenized) line.fail("generation needs text records, not input_ids");
  PromptRecord out;
  nlohmann::json v = line.value;
  if (spec.completion) {  // the record may leave its completion out
    const auto completion = spec.completion(v);
    if (!completion) spec.set_completion(v, "");
    out.completion = completion.value_or("");
  }
  Record r = parse_record(JsonlLine{line.file, line.line, v}, options, tok.vocab_size());
  out.label = r.label;
  // Cut before the last trainable text: the completion to predict (for text
  // records, the whole text is the prompt and only EOS goes).
  size_t last = r.segments.size();
  for (size_t i = 0; i < r.segments.size(); ++i)
    if (r.segments[i].trainable && (spec.completion ? r.segments[i].special == Segment::Special::None
                                                    : r.segments[i].special == Segment::Special::Eos))
      last = i;
  r.segments.resize(last);
  out.ids = tokenize_record(r, &tok, false).input_ids;
  return out;
}

}  // namespace hyft::data
