// SentencePiece tokenizers: loading a model's tokenizer.model (or any
// .model file), encoding and decoding, and training a new one on a corpus.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace hyft::tokenizer {

class Tokenizer {
 public:
  // Loads a SentencePiece model file; a missing or broken file is a UserError.
  explicit Tokenizer(const std::string& model_path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;

  // Text -> ids, as SentencePiece encodes it (no BOS/EOS added). Thread-safe.
  std::vector<int64_t> encode(const std::string& text) const;

  // Ids of `text` with, for each, the byte offset in `text` where it ends (a
  // piece that covers no byte of its own, like the trailing byte pieces of a
  // character, gets its predecessor's). `starts_input`: the text begins the
  // input, and SentencePiece's "▁" prefix is added as encode() adds it; false:
  // the text follows a special token, and no prefix is added, as transformers'
  // Llama tokenizers (legacy=false) encode the text after a special token.
  struct Spans {
    std::vector<int64_t> ids;
    std::vector<size_t> ends;
  };
  Spans encode_spans(const std::string& text, bool starts_input) const;
  std::string decode(const std::vector<int64_t>& ids) const;

  std::string piece(int64_t id) const;  // the vocabulary entry, e.g. "<s>", "▁the"
  std::optional<int64_t> unk_id() const;

  int64_t vocab_size() const;
  std::optional<int64_t> bos_id() const;  // nullopt when the model has none
  std::optional<int64_t> eos_id() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// The tokenizer of a model folder (its tokenizer.model), or `explicit_path` when
// given. A folder without one is a UserError that points at --tokenizer.
Tokenizer load_tokenizer(const std::string& model_dir, const std::string& explicit_path = "");

// The same, but null when neither is there (pre-tokenized data needs none).
std::unique_ptr<Tokenizer> find_tokenizer(const std::string& model_dir, const std::string& explicit_path = "");

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
