// hyft tokenizer train: a SentencePiece model from a text or JSONL corpus.
#include "commands.h"

#include "common/error.h"
#include "data/jsonl.h"
#include "data/records.h"
#include "io/atomic_file.h"
#include "tokenizer/tokenizer.h"

#include <cstdio>
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
  o.num_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (data::looks_like_jsonl(input))
    o.jsonl_to_text = [](const std::string& jsonl, const std::string& text) { data::write_text_corpus(jsonl, text); };
  tokenizer::train_tokenizer(input, out, o);
  const tokenizer::Tokenizer t(out);
  std::printf("wrote %s: %lld pieces\n", out.c_str(), static_cast<long long>(t.vocab_size()));
  return 0;
}

}  // namespace

int tokenizer_command(int argc, char** argv) {
  return run_verb(argc, argv, "train", "hyft tokenizer train --input FILE --vocab-size N --output FILE.model", tokenizer_train);
}

}  // namespace hyft::app
