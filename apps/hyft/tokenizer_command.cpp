// hyft tokenizer train: a SentencePiece model from a text or JSONL corpus.
// hyft tokenizer encode / decode: ids of texts and texts of ids, with a model
// folder's tokenizer (its added tokens too) or a .model file: the tool to reach for
// when ids look wrong.
#include "commands.h"

#include "common/error.h"
#include "common/parallel.h"
#include "data/jsonl.h"
#include "data/records.h"
#include "io/atomic_file.h"
#include "tokenizer/tokenizer.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

namespace hyft::app {

namespace {

int tokenizer_train(int argc, char** argv) {
  tokenizer::TrainOptions o;
  std::string input, out;
  OptionTable opts(argv[0], "Train a Llama-style SentencePiece tokenizer (BPE, byte fallback) on a text file "
                            "(one sample a line) or a JSONL dataset (its text fields).");
  opts.optional("", "input", "text or JSONL corpus", input);
  opts.value("", "vocab-size", "pieces in the vocabulary", o.vocab_size);
  opts.optional("", "output", "the .model file to write", out);
  opts.value("", "model-type", "bpe or unigram", o.model_type);
  bool force = false;
  opts.flag("", "force", "replace an existing --output file", force);
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!input.empty(), argv[0], "input");
  require(!out.empty(), argv[0], "output");
  io::check_output_file(out, force, "--output");
  HYFT_CHECK(o.model_type == "bpe" || o.model_type == "unigram", "--model-type: use bpe or unigram");
  o.num_threads = thread_count(0);
  if (data::looks_like_jsonl(input))
    o.jsonl_to_text = [](const std::string& jsonl, const std::string& text) { data::write_text_corpus(jsonl, text); };
  tokenizer::train_tokenizer(input, out, o);
  const tokenizer::Tokenizer t(out);
  std::printf("wrote %s: %lld pieces\n", out.c_str(), static_cast<long long>(t.vocab_size()));
  return 0;
}

// --tokenizer PATH: a model folder (tokenizer.model and the tokens its
// tokenizer_config.json adds) or a .model file.
tokenizer::Tokenizer open_tokenizer(const std::string& path) {
  HYFT_CHECK(!path.empty(), "--tokenizer is required: a model folder or a .model file");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return tokenizer::load_tokenizer(path);
  return tokenizer::Tokenizer(path);
}

int tokenizer_encode(int argc, char** argv) {
  std::string path, text, input;
  bool no_special = false;
  int threads = 0;
  OptionTable opts(argv[0], "Token ids of texts, as training sees them: BOS first (the model's), the text encoded "
                            "whole (added tokens matched first), no EOS. One JSON list of ids per text, in order.");
  opts.optional("", "tokenizer", "a model folder or a SentencePiece .model file", path);
  opts.optional("", "text", "one text to encode", text);
  opts.optional("", "input", "JSONL of {\"text\": ...} records to encode, one list per line", input);
  opts.flag("", "no-special", "no BOS", no_special);
  opts.value("", "threads", "threads encoding --input's texts (0: one per core)", threads);
  opts.at_least("threads", threads, 0);
  if (!parse_or_help(opts, argc, argv)) return 0;
  HYFT_CHECK(opts.given("text") != !input.empty(), "give one of --text STR and --input FILE.jsonl");
  const tokenizer::Tokenizer tok = open_tokenizer(path);
  auto encode = [&](const std::string& t) {
    std::vector<int64_t> ids;
    if (!no_special && tok.bos_id()) ids.push_back(*tok.bos_id());
    const auto body = tok.encode(t);
    ids.insert(ids.end(), body.begin(), body.end());
    return nlohmann::json(ids).dump();
  };
  if (opts.given("text")) {
    std::printf("%s\n", encode(text).c_str());
    return 0;
  }
  // Blocks of texts encoded on every core and printed in order, so memory stays
  // bounded by a block whatever the file's size.
  constexpr size_t kBlock = 16384;
  std::vector<std::string> texts;
  auto flush = [&] {
    parallel_for(texts.size(), thread_count(threads), [&](size_t i) { texts[i] = encode(texts[i]) + "\n"; }, 64);
    for (const auto& t : texts) std::fwrite(t.data(), 1, t.size(), stdout);
    texts.clear();
  };
  data::read_jsonl(input, [&](const data::JsonlLine& line) {
    HYFT_CHECK(line.value.contains("text") && line.value["text"].is_string(), input, ":", line.line,
               ": expected a record {\"text\": \"...\"}");
    texts.push_back(line.value["text"].get<std::string>());
    if (texts.size() == kBlock) flush();
  });
  flush();
  return 0;
}

int tokenizer_decode(int argc, char** argv) {
  std::string path, ids_text;
  OptionTable opts(argv[0], "The text of token ids (added tokens as their text).");
  opts.optional("", "tokenizer", "a model folder or a SentencePiece .model file", path);
  opts.optional("", "ids", "the ids: a JSON list ([1, 450, 4996]) or comma-separated", ids_text);
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!ids_text.empty(), argv[0], "ids");
  const tokenizer::Tokenizer tok = open_tokenizer(path);
  std::string list = ids_text;
  if (list.front() != '[') list = "[" + list + "]";
  const nlohmann::json j = nlohmann::json::parse(list, nullptr, /*allow_exceptions=*/false);
  HYFT_CHECK(j.is_array(), "--ids: '", ids_text, "' is not a list of ids (such as [1, 450, 4996] or 1,450,4996)");
  std::vector<int64_t> ids;
  for (const auto& x : j) {
    HYFT_CHECK(x.is_number_integer() && x.get<int64_t>() >= 0 && x.get<int64_t>() < tok.vocab_size(), "--ids: ",
               x.dump(), " is not an id of this tokenizer (0 to ", tok.vocab_size() - 1, ")");
    ids.push_back(x.get<int64_t>());
  }
  std::printf("%s\n", tok.decode(ids).c_str());
  return 0;
}

}  // namespace

int tokenizer_command(int argc, char** argv) {
  const std::string verb = argc >= 2 ? argv[1] : "";
  if (verb == "encode")
    return run_verb(argc, argv, "encode", "hyft tokenizer encode --tokenizer PATH (--text STR | --input FILE.jsonl)",
                    tokenizer_encode);
  if (verb == "decode")
    return run_verb(argc, argv, "decode", "hyft tokenizer decode --tokenizer PATH --ids 1,450,4996", tokenizer_decode);
  return run_verb(argc, argv, "train",
                  "hyft tokenizer train --input FILE --vocab-size N --output FILE.model\n"
                  "       hyft tokenizer encode --tokenizer PATH (--text STR | --input FILE.jsonl) [--no-special]\n"
                  "       hyft tokenizer decode --tokenizer PATH --ids 1,450,4996",
                  tokenizer_train);
}

}  // namespace hyft::app
