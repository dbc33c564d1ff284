// Loading a JSONL dataset into tokenized examples: record kinds rendered
// by their templates, BOS/EOS rules, the loss mask, the length policy (truncate,
// drop or error at max_seq_len) with its counts, in parallel over lines.
#pragma once

#include "data/example.h"
#include "data/jsonl.h"
#include "data/records.h"
#include "tokenizer/tokenizer.h"

#include <map>
#include <string>
#include <vector>

namespace hyft::data {

enum class Overlength { Truncate, Drop, Error };
Overlength parse_overlength(const std::string& text, const std::string& flag);
const char* overlength_name(Overlength policy);  // "truncate", "drop", "error"

struct TokenizeOptions {
  int64_t max_seq_len = 2048;
  Overlength overlength = Overlength::Truncate;
  bool train_on_prompt = false;  // loss on prompts too (EOS always carries a loss)
};

struct DatasetOptions {
  RecordOptions records;
  TokenizeOptions tokens;
  JsonlOptions jsonl;
  int threads = 0;        // 0: every core
  std::string cache_dir;  // when set, tokenized datasets are cached there (data/dataset_cache.h)
};

struct DatasetStats {
  std::map<std::string, int64_t> records_by_kind;
  int64_t records = 0;            // well-formed records read
  int64_t skipped_lines = 0;      // bad lines skipped (--skip-bad-lines)
  int64_t truncated = 0;          // cut to max_seq_len
  int64_t dropped_overlength = 0; // longer than max_seq_len under --overlength drop
  int64_t dropped_no_target = 0;  // nothing left to learn (e.g. prompt filled the length)
  int64_t tokens = 0;             // tokens in the kept examples
  int64_t target_tokens = 0;      // of which carry a loss
  int64_t longest = 0;
};

struct Dataset {
  std::vector<Example> examples;
  int64_t max_seq_len = 0;  // the length limit every example keeps (packed rows are this long)
  DatasetStats stats;
};

// One record to ids and labels, as transformers tokenizes the same rendered text:
// BOS first when the tokenizer has one, then the text between special tokens
// encoded whole (never segment by segment, so no "▁" appears at a segment
// boundary) and each token's loss taken from the segment its last byte lies in;
// BOS/EOS where the template puts them. Text and completion records encode like
// tokenizer(text) (the text starts the input); chat records like
// apply_chat_template, whose text follows the BOS token. Before the length
// policy. `tokenizer` may be null for pre-tokenized records.
Example tokenize_record(const Record& record, const tokenizer::Tokenizer* tokenizer, bool train_on_prompt);

// Reads, renders and tokenizes `path`. `tokenizer` may be null when every record
// is pre-tokenized; a text record then is a FILE:LINE error asking for one.
// With options.cache_dir, a cached result for the same inputs is used instead.
Dataset load_dataset(const std::string& path, const tokenizer::Tokenizer* tokenizer, int64_t vocab_size,
                     const DatasetOptions& options);
// The same, always from the file.
Dataset tokenize_dataset(const std::string& path, const tokenizer::Tokenizer* tokenizer, int64_t vocab_size,
                         const DatasetOptions& options);

// Deterministic held-out split: a `fraction` of the examples (at least one) chosen
// by `seed` go to the second dataset.
std::pair<std::vector<Example>, std::vector<Example>> split_holdout(std::vector<Example> examples, double fraction,
                                                                    uint64_t seed);

}  // namespace hyft::data
