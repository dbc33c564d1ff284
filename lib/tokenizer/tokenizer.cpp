#include "tokenizer/tokenizer.h"

#include "common/error.h"
#include "common/strings.h"
#include "io/json_file.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_tokenizer.h"
#include "io/remove_tree.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

namespace hyft::tokenizer {

namespace fs = std::filesystem;

Tokenizer::Tokenizer(const std::string& model_path) : path_(model_path) {
  HYFT_CHECK(fs::exists(model_path), model_path, ": no such tokenizer file");
  if (ends_with(model_path, ".json")) {
    bpe_ = std::make_unique<BpeTokenizer>(model_path);
    bos_ = bpe_->bos_id();
    return;
  }
  sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp_->Load(model_path);
  HYFT_CHECK(status.ok(), model_path, ": not a SentencePiece model (it does not parse as one); give the model's "
             "tokenizer.model, or train one with 'hyft tokenizer train'");
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  if (!added_.empty()) return encode_spans(text, /*starts_input=*/true).ids;
  if (bpe_) return bpe_->encode(text);
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  HYFT_CHECK(status.ok(), path_, ": cannot encode text (", status.ToString(), ")");
  return {ids.begin(), ids.end()};
}

Tokenizer::Spans Tokenizer::encode_spans(const std::string& text, bool starts_input) const {
  if (added_.empty()) return encode_pieces(text, starts_input);
  Spans out;
  bool first = starts_input;
  split_on_added_tokens(
      text, added_,
      [&](size_t begin, size_t end) {  // the model over text[begin, end)
        const auto part = encode_pieces(text.substr(begin, end - begin), first);
        for (size_t i = 0; i < part.ids.size(); ++i) {
          out.ids.push_back(part.ids[i]);
          out.ends.push_back(begin + part.ends[i]);
        }
      },
      [&](int64_t id, size_t end) {
        out.ids.push_back(id);
        out.ends.push_back(end);
        first = false;  // the text after a special token has no prefix
      });
  return out;
}

Tokenizer::Spans Tokenizer::encode_pieces(const std::string& text, bool starts_input) const {
  if (bpe_) return bpe_->encode_with_ends(text);  // no dummy prefix either way
  // Without the prefix: encode "<unk>" + text and drop the pieces of "<unk>", as
  // transformers' slow Llama tokenizer does; the text then starts mid-input.
  const std::string lead = starts_input ? "" : sp_->IdToPiece(sp_->unk_id());
  const auto spt = sp_->EncodeAsImmutableProto(lead + text);
  Spans out;
  bool straddles = false;
  size_t previous_end = 0;
  for (const auto& piece : spt.pieces()) {
    if (piece.end() <= lead.size() && !lead.empty()) continue;  // a piece of the lead
    if (piece.begin() < lead.size()) straddles = true;
    const size_t end = piece.end() > piece.begin() ? piece.end() - lead.size() : previous_end;
    out.ids.push_back(piece.id());
    out.ends.push_back(end);
    previous_end = end;
  }
  // A piece merged across the lead and the text (never seen with Llama-style
  // vocabularies): fall back to encoding the text as the start of an input.
  if (straddles) return encode_pieces(text, true);
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  std::vector<int64_t> run;  // the model's ids since the last added token
  auto flush = [&] {
    if (run.empty()) return;
    if (bpe_) {
      text += bpe_->decode(run);
    } else {
      std::string part;
      const auto status = sp_->Decode(std::vector<int>(run.begin(), run.end()), &part);
      HYFT_CHECK(status.ok(), path_, ": cannot decode ids (", status.ToString(), ")");
      text += part;
    }
    run.clear();
  };
  for (const int64_t id : ids) {
    if (id < piece_count()) {
      run.push_back(id);
      continue;
    }
    flush();
    text += piece(id);
  }
  flush();
  return text;
}

int64_t Tokenizer::piece_count() const { return bpe_ ? bpe_->vocab_size() : sp_->GetPieceSize(); }

int64_t Tokenizer::vocab_size() const { return piece_count() + int64_t(added_.size()); }

std::string Tokenizer::piece(int64_t id) const {
  if (id >= piece_count()) {
    HYFT_CHECK(id - piece_count() < int64_t(added_.size()), path_, ": id ", id, " is outside the vocabulary (",
               vocab_size(), " tokens)");
    return added_[size_t(id - piece_count())].content;
  }
  if (bpe_) return bpe_->token(id);
  return sp_->IdToPiece(static_cast<int>(id));
}

int64_t Tokenizer::add_special_tokens(const std::vector<std::string>& texts) {
  int64_t added = 0;
  for (const auto& t : texts) {
    HYFT_CHECK(!t.empty(), "an added token cannot be empty");
    bool known = bpe_ ? bpe_->token_id(t).has_value()
                      : sp_->PieceToId(t) != sp_->unk_id() || t == sp_->IdToPiece(sp_->unk_id());
    for (const auto& a : added_) known |= a.content == t;
    if (known) continue;
    added_.push_back({t, vocab_size()});
    ++added;
  }
  return added;
}

std::optional<int64_t> Tokenizer::unk_id() const {
  if (bpe_) return std::nullopt;
  return sp_->unk_id() >= 0 ? std::optional<int64_t>(sp_->unk_id()) : std::nullopt;
}

std::optional<int64_t> Tokenizer::bos_id() const {
  if (bpe_) return bos_;
  return sp_->bos_id() >= 0 ? std::optional<int64_t>(sp_->bos_id()) : std::nullopt;
}

std::optional<int64_t> Tokenizer::eos_id() const {
  if (bpe_) return eos_;
  return sp_->eos_id() >= 0 ? std::optional<int64_t>(sp_->eos_id()) : std::nullopt;
}

void Tokenizer::set_special_ids(std::optional<int64_t> bos, std::optional<int64_t> eos) {
  bos_ = bos;
  eos_ = eos;
}

std::optional<int64_t> Tokenizer::token_id(const std::string& token) const {
  for (const auto& a : added_)
    if (a.content == token) return a.id;
  if (bpe_) return bpe_->token_id(token);
  const int id = sp_->PieceToId(token);
  if (id == sp_->unk_id() && token != sp_->IdToPiece(sp_->unk_id())) return std::nullopt;
  return id;
}

std::optional<std::string> special_token(const nlohmann::json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

Tokenizer load_tokenizer(const std::string& model_dir, const std::string& explicit_path) {
  if (!explicit_path.empty()) return Tokenizer(explicit_path);
  const fs::path sp_file = fs::path(model_dir) / "tokenizer.model", json_file = fs::path(model_dir) / "tokenizer.json";
  if (fs::exists(sp_file)) {
    Tokenizer tok(sp_file.string());
    tok.add_special_tokens(read_added_tokens(model_dir, tok.piece_count()));
    return tok;
  }
  HYFT_CHECK(fs::exists(json_file), model_dir, ": no tokenizer.model (SentencePiece) or tokenizer.json; pass "
             "--tokenizer FILE, or give pre-tokenized data ({\"input_ids\": [...]})");
  HYFT_CHECK(bpe_supported(), json_file.string(), ": this hyft was built without PCRE2, which tokenizer.json needs; "
             "install libpcre2-dev and rebuild, or pass --tokenizer FILE.model");
  Tokenizer tok(json_file.string());
  // tokenizer_config.json names BOS and EOS; the BOS counts only when tokenizer.json's
  // post-processor adds it (what tokenizer(text) does), or add_bos_token says so.
  const fs::path config_file = fs::path(model_dir) / "tokenizer_config.json";
  if (fs::exists(config_file)) {
    const auto config = io::read_json_file(config_file.string(), "the tokenizer's settings");
    std::optional<int64_t> bos = tok.bos_id(), eos;
    if (const auto name = special_token(config, "eos_token")) {
      eos = tok.token_id(*name);
      HYFT_CHECK(eos, config_file.string(), ": eos_token '", *name, "' is not in tokenizer.json");
    }
    if (config.value("add_bos_token", false))
      if (const auto name = special_token(config, "bos_token")) bos = tok.token_id(*name);
    tok.set_special_ids(bos, eos);
  }
  return tok;
}

std::vector<std::string> read_added_tokens(const std::string& folder, int64_t piece_count) {
  const fs::path config = fs::path(folder) / "tokenizer_config.json";
  if (!fs::exists(config)) return {};
  const auto j = io::read_json_file(config.string(), "the tokenizer's settings");
  if (!j.is_object() || !j.contains("added_tokens_decoder")) return {};
  const auto& decoder = j["added_tokens_decoder"];
  HYFT_CHECK(decoder.is_object(), config.string(), ": 'added_tokens_decoder' must be an object of id: token");
  std::map<int64_t, std::string> beyond;  // ids past the SentencePiece pieces
  for (const auto& [key, entry] : decoder.items()) {
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(key, &used);
      if (used != key.size()) id = -1;
    } catch (const std::exception&) {
    }
    HYFT_CHECK(id >= 0, config.string(), ": 'added_tokens_decoder' key '", key, "' is not a token id");
    HYFT_CHECK(entry.is_object() && entry.contains("content") && entry["content"].is_string(), config.string(),
               ": 'added_tokens_decoder'.", key, " needs a string 'content'");
    if (id >= piece_count) beyond[id] = entry["content"].get<std::string>();
  }
  std::vector<std::string> out;
  for (const auto& [id, text] : beyond) {
    HYFT_CHECK(id == piece_count + int64_t(out.size()), config.string(), ": added token '", text, "' has id ", id,
               " but the next free id after the tokenizer's ", piece_count, " pieces and ", out.size(),
               " added tokens is ", piece_count + int64_t(out.size()), "; hyft reads added tokens numbered on from "
               "the pieces");
    out.push_back(text);
  }
  return out;
}

std::unique_ptr<Tokenizer> find_tokenizer(const std::string& model_dir, const std::string& explicit_path) {
  if (explicit_path.empty() &&
      (model_dir.empty() || (!fs::exists(fs::path(model_dir) / "tokenizer.model") &&
                             !fs::exists(fs::path(model_dir) / "tokenizer.json"))))
    return nullptr;
  return std::make_unique<Tokenizer>(load_tokenizer(model_dir, explicit_path));
}

void check_fits_model(const Tokenizer& tok, int64_t model_vocab_size) {
  HYFT_CHECK(tok.vocab_size() <= model_vocab_size, tok.path(), ": the tokenizer has ", tok.vocab_size(),
             " pieces but the model's vocab_size is ", model_vocab_size,
             "; use the model's own tokenizer.model (or pass the right --tokenizer)");
}

void train_tokenizer(const std::string& input, const std::string& output, const TrainOptions& o) {
  HYFT_CHECK(fs::exists(input), input, ": no such file");
  HYFT_CHECK(o.vocab_size >= 300, "--vocab-size must be at least 300 (256 byte pieces + specials), got ",
             o.vocab_size);
  HYFT_CHECK(output.size() > 6 && output.compare(output.size() - 6, 6, ".model") == 0, "--output ", output,
             ": must end in .model");
  const std::string tmp_dir = output + ".tmp-" + std::to_string(::getpid());
  io::remove_tree(tmp_dir);
  fs::create_directories(tmp_dir);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { io::remove_tree(dir); }
  } cleanup{tmp_dir};

  // JSONL: the records' strings as a plain corpus, one record a line.
  std::string corpus = input;
  if (o.jsonl_to_text) {
    corpus = tmp_dir + "/corpus.txt";
    o.jsonl_to_text(input, corpus);
  }
  const std::string prefix = tmp_dir + "/tok";
  const std::string args = "--input=" + corpus + " --model_prefix=" + prefix +
                           " --vocab_size=" + std::to_string(o.vocab_size) + " --model_type=" + o.model_type +
                           " --character_coverage=" + std::to_string(o.character_coverage) +
                           " --num_threads=" + std::to_string(o.num_threads) +
                           " --byte_fallback=true --split_digits=true --allow_whitespace_only_pieces=true"
                           " --remove_extra_whitespaces=false --normalization_rule_name=identity"
                           " --hard_vocab_limit=false --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1"
                           " --minloglevel=2 --train_extremely_large_corpus=false";
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  HYFT_CHECK(status.ok(), input, ": tokenizer training failed (", status.ToString(), ")");
  const std::string staged = output + ".tmp-" + std::to_string(::getpid()) + ".model";
  fs::copy_file(prefix + ".model", staged, fs::copy_options::overwrite_existing);
  HYFT_CHECK(std::rename(staged.c_str(), output.c_str()) == 0, output, ": cannot write");
}

}  // namespace hyft::tokenizer
