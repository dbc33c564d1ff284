#include "data_options.h"

#include "common/error.h"


namespace hyft::app {

void add_record_options(cxxopts::Options& opts, const std::string& group) {
  opts.add_options(group)
      ("chat-template", "template of messages records: chatml, llama2 or alpaca",
       cxxopts::value<std::string>()->default_value("chatml"))
      ("label-field", "record field holding the class label", cxxopts::value<std::string>()->default_value("label"));
}

data::RecordOptions record_options_from(const cxxopts::ParseResult& args) {
  data::RecordOptions o;
  o.chat_template = args["chat-template"].as<std::string>();
  data::validate_chat_template(o.chat_template, "--chat-template");
  o.label_field = args["label-field"].as<std::string>();
  return o;
}

void add_data_options(cxxopts::Options& opts) {
  add_record_options(opts);
  opts.add_options("data")
      ("tokenizer", "SentencePiece .model file (default: the model folder's tokenizer.model)",
       cxxopts::value<std::string>())
      ("max-seq-len", "longest sample in tokens", cxxopts::value<int64_t>()->default_value("2048"))
      ("overlength", "samples over --max-seq-len: truncate, drop or error",
       cxxopts::value<std::string>()->default_value("truncate"))
      ("train-on-prompt", "put the loss on prompts too, not only on completions")
      ("skip-bad-lines", "skip malformed dataset lines (and report how many) instead of failing")
      ("data-cache", "folder caching tokenized datasets, keyed by file, tokenizer and settings (off when unset)",
       cxxopts::value<std::string>());
}

data::DatasetOptions data_options_from(const cxxopts::ParseResult& args) {
  data::DatasetOptions o;
  o.tokens.max_seq_len = args["max-seq-len"].as<int64_t>();
  HYFT_CHECK(o.tokens.max_seq_len >= 2, "--max-seq-len must be at least 2, got ", o.tokens.max_seq_len);
  o.tokens.overlength = data::parse_overlength(args["overlength"].as<std::string>(), "--overlength");
  o.tokens.train_on_prompt = args.count("train-on-prompt") > 0;
  o.records = record_options_from(args);
  o.jsonl.skip_bad_lines = args.count("skip-bad-lines") > 0;
  if (args.count("data-cache")) o.cache_dir = args["data-cache"].as<std::string>();
  return o;
}

std::unique_ptr<tokenizer::Tokenizer> optional_tokenizer(const cxxopts::ParseResult& args,
                                                         const std::string& model_dir) {
  return tokenizer::find_tokenizer(model_dir, args.count("tokenizer") ? args["tokenizer"].as<std::string>() : "");
}

}  // namespace hyft::app
