// The record kinds of a JSONL dataset (SPEC 4), recognised by their fields, and
// their rendering into segments (text + whether it carries a loss) by the Alpaca
// and chat templates. Tokenization happens later (data/dataset.h).
#pragma once

#include "data/example.h"
#include "data/jsonl.h"

#include <optional>
#include <string>
#include <vector>

namespace hyft::data {

enum class RecordKind { Text, Completion, Alpaca, Chat, Pretokenized };
const char* kind_name(RecordKind kind);  // "text", "prompt/completion", "alpaca", "messages", "input_ids"

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
};

// Chat templates built in; an unknown name is a UserError naming `flag`.
void validate_chat_template(const std::string& name, const std::string& flag);

// Parses and renders one JSONL record; `vocab_size` bounds pre-tokenized ids.
Record parse_record(const JsonlLine& line, const RecordOptions& options, int64_t vocab_size);

}  // namespace hyft::data
