// hyft generate: text from a model (and adapter) with a KV cache (SPEC 6).
#include "commands.h"

#include "common/error.h"
#include "common/runtime.h"
#include "data/prompt.h"
#include "generate/generator.h"
#include "io/atomic_file.h"
#include "data_options.h"
#include "model_options.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

namespace hyft::app {

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

int generate_command(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Generate text with a KV cache. --prompt prints the completion alone; --input "
                                 "FILE.jsonl writes one JSON line per record.");
  opts.add_options()
      ("tokenizer", "SentencePiece .model (default: the model folder's tokenizer.model)", cxxopts::value<std::string>())
      ("prompt", "prompt text (used as it is, after BOS)", cxxopts::value<std::string>())
      ("input", "JSONL of prompts: prompt, instruction[/input], messages or text records",
       cxxopts::value<std::string>())
      ("output", "where --input results go (default: stdout)", cxxopts::value<std::string>())
      ("log", "append every prompt and output to this JSONL (audit trail)", cxxopts::value<std::string>())
      ("max-new-tokens", "tokens to generate at most", cxxopts::value<int64_t>()->default_value("200"))
      ("temperature", "sampling temperature; 0 = greedy", cxxopts::value<double>()->default_value("0.7"))
      ("top-p", "nucleus sampling mass (1 = off)", cxxopts::value<double>()->default_value("0.9"))
      ("top-k", "keep the k most likely tokens (0 = off)", cxxopts::value<int64_t>()->default_value("0"))
      ("repetition-penalty", "penalty on tokens already seen (1 = off)", cxxopts::value<double>()->default_value("1.2"))
      ("seed", "sampling seed", cxxopts::value<uint64_t>()->default_value("0"));
  add_record_options(opts, "");
  add_model_options(opts, /*with_adapter=*/true);
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  HYFT_CHECK(args.count("model"), "hyft generate: --model is required; see 'hyft generate --help'");
  HYFT_CHECK(args.count("prompt") + args.count("input") == 1, "hyft generate: give --prompt TEXT or --input FILE.jsonl");

  generate::GenerateSettings gs;
  gs.max_new_tokens = args["max-new-tokens"].as<int64_t>();
  gs.sampling.temperature = args["temperature"].as<double>();
  gs.sampling.top_p = args["top-p"].as<double>();
  gs.sampling.top_k = args["top-k"].as<int64_t>();
  gs.sampling.repetition_penalty = args["repetition-penalty"].as<double>();
  gs.seed = args["seed"].as<uint64_t>();
  HYFT_CHECK(gs.max_new_tokens > 0, "--max-new-tokens must be positive");
  HYFT_CHECK(gs.sampling.temperature >= 0, "--temperature must be >= 0 (0 = greedy)");
  HYFT_CHECK(gs.sampling.top_p > 0 && gs.sampling.top_p <= 1, "--top-p must be in (0, 1]");
  HYFT_CHECK(gs.sampling.top_k >= 0, "--top-k must be >= 0");
  HYFT_CHECK(gs.sampling.repetition_penalty > 0, "--repetition-penalty must be positive");

  const std::string model_dir = args.count("model") ? args["model"].as<std::string>() : "";
  auto model = load_model(args, load_options_from(args));
  const tokenizer::Tokenizer tok =
      tokenizer::load_tokenizer(model_dir, args.count("tokenizer") ? args["tokenizer"].as<std::string>() : "");
  tokenizer::check_fits_model(tok, model->config().vocab_size);
  gs.stop_ids = model->config().eos_token_ids;
  if (tok.eos_id() && std::find(gs.stop_ids.begin(), gs.stop_ids.end(), *tok.eos_id()) == gs.stop_ids.end())
    gs.stop_ids.push_back(*tok.eos_id());

  std::ofstream log;
  if (args.count("log")) {
    log.open(args["log"].as<std::string>(), std::ios::app);
    HYFT_CHECK(log, args["log"].as<std::string>(), ": cannot write the log");
  }
  auto run_one = [&](const std::vector<int64_t>& prompt_ids, const nlohmann::json& source) {
    const auto g = generate::generate(*model, prompt_ids, gs);
    std::vector<int64_t> visible = g.tokens;
    if (g.stopped) visible.pop_back();
    const std::string text = tok.decode(visible);
    nlohmann::ordered_json rec = {{"prompt", tok.decode(prompt_ids)}, {"output", text},
                                  {"new_tokens", g.tokens.size()}, {"stopped_at_eos", g.stopped}};
    if (log.is_open()) {
      nlohmann::ordered_json entry = {{"time", utc_now()}, {"model", model_dir},
                                      {"adapter", args.count("adapter") ? args["adapter"].as<std::string>() : ""},
                                      {"input", source}, {"prompt", rec["prompt"]}, {"output", text},
                                      {"settings", {{"temperature", gs.sampling.temperature},
                                                    {"top_p", gs.sampling.top_p}, {"top_k", gs.sampling.top_k},
                                                    {"repetition_penalty", gs.sampling.repetition_penalty},
                                                    {"max_new_tokens", gs.max_new_tokens}, {"seed", gs.seed}}}};
      log << entry.dump() << "\n" << std::flush;
    }
    return std::make_pair(text, rec);
  };

  if (args.count("prompt")) {
    std::vector<int64_t> ids;
    if (tok.bos_id()) ids.push_back(*tok.bos_id());
    const auto body = tok.encode(args["prompt"].as<std::string>());
    ids.insert(ids.end(), body.begin(), body.end());
    std::printf("%s\n", run_one(ids, args["prompt"].as<std::string>()).first.c_str());
    return 0;
  }
  const data::RecordOptions ro = record_options_from(args);
  std::string results;
  data::read_jsonl(args["input"].as<std::string>(), [&](const data::JsonlLine& line) {
    const auto p = data::prompt_of(line, ro, tok);
    auto [text, rec] = run_one(p.ids, line.value);
    rec["line"] = line.line;
    results += rec.dump() + "\n";
    if (!args.count("output")) std::cout << rec.dump() << std::endl;
  });
  if (args.count("output")) io::write_file_atomic(args["output"].as<std::string>(), results);
  return 0;
}

}  // namespace hyft::app
