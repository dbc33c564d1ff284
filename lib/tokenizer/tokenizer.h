// The tokenizer of a model: SentencePiece (a tokenizer.model, or any .model file)
// or a byte-level BPE (tokenizer.json, bpe_tokenizer.h), with the special tokens
// added on top of it (transformers' added_tokens_decoder in tokenizer_config.json,
// or --add-special-tokens); encoding and decoding; and training a new SentencePiece
// model on a corpus. Everything that tokenizes goes through this one class.
#pragma once

#include "tokenizer/added_tokens.h"
#include "tokenizer/token_spans.h"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace hyft::tokenizer {

class BpeTokenizer;

class Tokenizer {
 public:
  // Loads a SentencePiece model file, or a tokenizer.json (a path ending in .json);
  // a missing or broken file is a UserError.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;

  // Text -> ids, as SentencePiece encodes it (no BOS/EOS added); added tokens
  // are matched first, as encode_spans does. Thread-safe.
  std::vector<int64_t> encode(const std::string& text) const;

  // Ids of `text` with, for each, the byte offset in `text` where it ends (a
  // piece that covers no byte of its own, like the trailing byte pieces of a
  // character, gets its predecessor's). `starts_input`: the text begins the
  // input, and SentencePiece's "▁" prefix is added as encode() adds it; false:
  // the text follows a special token, and no prefix is added, as transformers'
  // Llama tokenizers (legacy=false) encode the text after a special token.
  using Spans = TokenSpans;
  // Added tokens in the text are matched first (exactly, leftmost, longest) and
  // become their ids; the text between them is encoded as above, the text after
  // one without the prefix (as after any special token).
  Spans encode_spans(const std::string& text, bool starts_input) const;
  std::string decode(const std::vector<int64_t>& ids) const;

  std::string piece(int64_t id) const;  // the vocabulary entry, e.g. "<s>", "▁the", or an added token
  std::optional<int64_t> unk_id() const;

  // Special tokens on top of the SentencePiece vocabulary, with ids from
  // vocab_size() on, in order; a text that already is a piece (or an added
  // token) keeps its id. Returns how many were new.
  int64_t add_special_tokens(const std::vector<std::string>& texts);
  // The added tokens (content, id), in id order.
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  // The SentencePiece vocabulary alone (ids below it are pieces).
  int64_t piece_count() const;

  int64_t vocab_size() const;  // pieces + added tokens
  std::optional<int64_t> bos_id() const;  // nullopt when the model has none
  std::optional<int64_t> eos_id() const;
  const std::string& path() const { return path_; }

  // BOS and EOS as a model folder's tokenizer_config.json names them (tokenizer.json
  // itself knows only the BOS its post-processor adds).
  void set_special_ids(std::optional<int64_t> bos, std::optional<int64_t> eos);
  // The id of a vocabulary entry or added token, if it has one.
  std::optional<int64_t> token_id(const std::string& token) const;

 private:
  Spans encode_pieces(const std::string& text, bool starts_input) const;  // the underlying model alone
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;  // one of these two
  std::unique_ptr<BpeTokenizer> bpe_;
  std::optional<int64_t> bos_, eos_;  // BPE: from tokenizer_config.json / the post-processor
  std::vector<AddedToken> added_;
};

// The tokenizer of a model folder (its tokenizer.model, else its tokenizer.json with
// BOS/EOS from tokenizer_config.json; plus the tokens tokenizer_config.json's
// added_tokens_decoder adds beyond its vocabulary), or `explicit_path` when given. A
// folder without one is a UserError that points at --tokenizer.
Tokenizer load_tokenizer(const std::string& model_dir, const std::string& explicit_path = "");

// The same, but null when neither is there (pre-tokenized data needs none).
std::unique_ptr<Tokenizer> find_tokenizer(const std::string& model_dir, const std::string& explicit_path = "");

// The tokens `tokenizer_config.json` in `folder` adds beyond `piece_count` (ids from
// piece_count on, contiguous), in id order; none when the file is not there.
std::vector<std::string> read_added_tokens(const std::string& folder, int64_t piece_count);

// A special token of a tokenizer_config.json object (`key` such as "bos_token"): a
// string, or {"content": ...}; nullopt when absent or of another shape.
std::optional<std::string> special_token(const nlohmann::json& config, const char* key);

// A tokenizer whose ids would overflow the model's embedding is a UserError.
void check_fits_model(const Tokenizer& tok, int64_t model_vocab_size);

struct TrainOptions {
  int64_t vocab_size = 32000;
  std::string model_type = "bpe";  // bpe or unigram
  double character_coverage = 0.9995;
  int num_threads = 2;
  // When set, the input is JSONL: this writes its text as a plain corpus file
  // (data::write_text_corpus), which training then reads.
  std::function<void(const std::string& jsonl, const std::string& text)> jsonl_to_text;
};

// Trains a Llama-style SentencePiece model (byte fallback, digits split, whitespace
// kept as it is; unk 0, bos 1, eos 2) on a text file (one sample a line) or, with
// jsonl_to_text, a JSONL dataset, and writes `output` (FILE.model) atomically.
void train_tokenizer(const std::string& input, const std::string& output, const TrainOptions& options);

}  // namespace hyft::tokenizer
