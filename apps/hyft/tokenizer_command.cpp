// hyft tokenizer train: a SentencePiece model from a text or JSONL corpus.
#include "commands.h"

#include "common/error.h"
#include "tokenizer/tokenizer.h"

#include <cstdio>
#include <iostream>
#include <thread>

namespace hyft::app {

namespace {

int tokenizer_train(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Train a Llama-style SentencePiece tokenizer (BPE, byte fallback) on a text file "
                                 "(one sample a line) or a JSONL dataset (its text fields).");
  opts.add_options()
      ("input", "text or JSONL corpus", cxxopts::value<std::string>())
      ("vocab-size", "pieces in the vocabulary", cxxopts::value<int64_t>()->default_value("32000"))
      ("output", "the .model file to write", cxxopts::value<std::string>())
      ("model-type", "bpe or unigram", cxxopts::value<std::string>()->default_value("bpe"));
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  for (const char* required : {"input", "output"})
    HYFT_CHECK(args.count(required), "hyft tokenizer train: --", required, " is required");
  tokenizer::TrainOptions o;
  o.vocab_size = args["vocab-size"].as<int64_t>();
  o.model_type = args["model-type"].as<std::string>();
  HYFT_CHECK(o.model_type == "bpe" || o.model_type == "unigram", "--model-type: use bpe or unigram");
  o.num_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  const std::string out = args["output"].as<std::string>();
  tokenizer::train_tokenizer(args["input"].as<std::string>(), out, o);
  const tokenizer::Tokenizer t(out);
  std::printf("wrote %s: %lld pieces\n", out.c_str(), static_cast<long long>(t.vocab_size()));
  return 0;
}

}  // namespace

int tokenizer_command(int argc, char** argv) {
  return run_verb(argc, argv, "train", "hyft tokenizer train --input FILE --vocab-size N --output FILE.model", tokenizer_train);
}

}  // namespace hyft::app
