// The record kinds of a JSONL dataset in one table (record_kinds()): how each is
// recognised by its fields, rendered into segments (text + whether it carries a
// loss) by the Alpaca and chat templates, and where its completion lives, so that
// training, evaluation, label scoring and generation read records the same way.
// Tokenization happens later (data/dataset.h).
#pragma once

#include "data/example.h"
#include "data/jsonl.h"
#include "template/jinja.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hyft::data {

enum class RecordKind { Text, Completion, Alpaca, Chat, Pretokenized };

struct Segment {
  // Token: the vocabulary entry whose text is `text` (a model template's BOS or EOS).
  enum class Special { None, Bos, Eos, Token };
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
  bool add_bos = true;  // false when the template writes its own BOS (a model's chat template)
};

// --chat-template model: the model folder's own Jinja template (tokenizer_config.json's
// "chat_template") and the texts of its bos_token and eos_token.
struct ModelChatTemplate {
  std::shared_ptr<const tmpl::Template> jinja;
  std::string source, bos_token, eos_token;
};

struct RecordOptions {
  std::string chat_template = "chatml";  // chatml, llama2, alpaca, or model (the model folder's own)
  // Set by the recipe from the model folder when chat_template is "model".
  std::shared_ptr<const ModelChatTemplate> model_template;
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

// The chat template of `folder`'s tokenizer_config.json (a string, or the "default"
// entry of a list of named templates) with its BOS/EOS texts; a UserError when the
// file or the template is missing, or the template uses what the engine lacks.
ModelChatTemplate read_model_chat_template(const std::string& folder);

// Chat templates built in, or "model"; an unknown name is a UserError naming `flag`.
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
