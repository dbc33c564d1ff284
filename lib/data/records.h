// The record kinds of a JSONL dataset in one table (record_kinds()): how each is
// recognised by its fields, rendered into segments (text + whether it carries a
// loss) by the Alpaca and chat templates, and where its completion lives, so that
// training, evaluation, label scoring and generation read records the same way.
// Tokenization happens later (data/dataset.h).
#pragma once

#include "data/example.h"
#include "data/jsonl.h"

#include <optional>
#include <string>
#include <vector>

namespace hyft::data {

enum class RecordKind { Text, Completion, Alpaca, Chat, Pretokenized };

struct Segment {
  enum class Special { None, Bos, Eos };
  std::string text;
  bool trainable = false;
  Special special = Special::None;  // a special token instead of text
};

struct Record {
  RecordKind kind = RecordKind::Text;
  std::vector<Segment> segments;  // every kind but Pretokenized
  Example pretokenized;           // Pretokenized only
  double weight = 1.0;
  std::optional<std::string> label;
};

struct RecordOptions {
  std::string chat_template = "chatml";  // chatml, llama2, alpaca
  std::string label_field = "label";
  std::string weight_field = "weight";  // per-record sampling weight (--sampling weighted)
};

// One row of the table. A record is of the first kind (in table order) that has
// one of `fields`.
struct RecordKindSpec {
  RecordKind kind;
  const char* name;                 // "text", "prompt/completion", "alpaca", "messages", "input_ids"
  std::vector<const char*> fields;  // recognising fields
  // The record's text as template segments; null for pre-tokenized records.
  std::vector<Segment> (*render)(const JsonlLine& line, const RecordOptions& options);
  // The completion as the record wrote it (nullopt when absent; records for
  // generation may leave it out); null when the kind has no completion (text,
  // input_ids): generation then continues the whole text.
  std::optional<std::string> (*completion)(const nlohmann::json& record);
  // Sets the completion (the last assistant turn of messages, added when the last
  // turn is the user's); null where `completion` is.
  void (*set_completion)(nlohmann::json& record, const std::string& text);
};

const std::vector<RecordKindSpec>& record_kinds();
// The kind of `record`, or a FILE:LINE error listing the kinds.
const RecordKindSpec& detect_record_kind(const JsonlLine& line);
const char* kind_name(RecordKind kind);

// Chat templates built in; an unknown name is a UserError naming `flag`.
void validate_chat_template(const std::string& name, const std::string& flag);

// The built-in chat template `name` as Jinja for tokenizer_config.json: rendered
// by transformers' apply_chat_template and tokenized, it gives exactly the ids hyft
// trains on (BOS and EOS as tokens; add_generation_prompt opens the assistant turn).
std::string chat_template_jinja(const std::string& name);

// A JSONL dataset as a plain-text corpus for tokenizer training, one record a
// line (line breaks become spaces): each record's text as its template renders it
// (prompt and completion joined as training sees them), or, for lines that are no
// record kind, every string they carry.
void write_text_corpus(const std::string& jsonl_path, const std::string& text_path,
                       const RecordOptions& options = {});

// Parses and renders one JSONL record; `vocab_size` bounds pre-tokenized ids.
Record parse_record(const JsonlLine& line, const RecordOptions& options, int64_t vocab_size);

}  // namespace hyft::data
