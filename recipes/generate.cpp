#include "recipes/generate.h"

#include "common/error.h"
#include "common/progress.h"
#include "data/prompt.h"
#include "io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>

namespace hyft::recipes {

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

void validate(const GenerateOptions& o) {
  if (!o.output_file.empty()) io::check_output_file(o.output_file, o.force, "--output");
  HYFT_CHECK(!o.model.model_dir.empty(), "hyft generate: --model is required; see 'hyft generate --help'");
  HYFT_CHECK(o.prompt.has_value() == o.input_file.empty(), "hyft generate: give --prompt TEXT or --input FILE.jsonl");
  const auto& gs = o.settings;
  HYFT_CHECK(gs.max_new_tokens > 0, "--max-new-tokens must be positive");
  HYFT_CHECK(gs.sampling.temperature >= 0, "--temperature must be >= 0 (0 = greedy)");
  HYFT_CHECK(gs.sampling.top_p > 0 && gs.sampling.top_p <= 1, "--top-p must be in (0, 1]");
  HYFT_CHECK(gs.sampling.top_k >= 0, "--top-k must be >= 0");
  HYFT_CHECK(gs.sampling.repetition_penalty > 0, "--repetition-penalty must be positive");
}

int run_generate(const GenerateOptions& options) {
  GenerateOptions o = options;
  resolve_chat_template(o.records, o.model);
  validate(o);
  generate::GenerateSettings gs = o.settings;
  auto model = load_model(o.model, load_options(o.model));
  const tokenizer::Tokenizer tok = tokenizer::load_tokenizer(o.model.model_dir, o.model.tokenizer_file);
  tokenizer::check_fits_model(tok, model->config().vocab_size);
  gs.stop_ids = model->config().eos_token_ids;
  if (tok.eos_id() && std::find(gs.stop_ids.begin(), gs.stop_ids.end(), *tok.eos_id()) == gs.stop_ids.end())
    gs.stop_ids.push_back(*tok.eos_id());

  std::ofstream log;
  if (!o.log_file.empty()) {
    log.open(o.log_file, std::ios::app);
    HYFT_CHECK(log, o.log_file, ": cannot write the log");
  }
  auto run_one = [&](const std::vector<int64_t>& prompt_ids, const nlohmann::json& source) {
    const auto g = generate::generate(*model, prompt_ids, gs);
    std::vector<int64_t> visible = g.tokens;
    if (g.stopped) visible.pop_back();
    const std::string text = tok.decode(visible);
    nlohmann::ordered_json rec = {{"prompt", tok.decode(prompt_ids)}, {"output", text},
                                  {"new_tokens", g.tokens.size()}, {"stopped_at_eos", g.stopped},
                                  {"output_ids", visible}};
    if (log.is_open()) {
      nlohmann::ordered_json entry = {{"time", utc_now()}, {"model", o.model.model_dir},
                                      {"adapter", o.model.adapter_dir},
                                      {"input", source}, {"prompt", rec["prompt"]}, {"output", text},
                                      {"settings", {{"temperature", gs.sampling.temperature},
                                                    {"top_p", gs.sampling.top_p}, {"top_k", gs.sampling.top_k},
                                                    {"repetition_penalty", gs.sampling.repetition_penalty},
                                                    {"max_new_tokens", gs.max_new_tokens}, {"seed", gs.seed}}}};
      log << entry.dump() << "\n" << std::flush;
    }
    return std::make_pair(text, rec);
  };

  if (o.prompt) {
    std::vector<int64_t> ids;
    if (o.prompt_as_user) {  // the chat template's prompt for one user turn
      const nlohmann::json record = {{"messages", {{{"role", "user"}, {"content", *o.prompt}}}}};
      ids = data::prompt_of(data::JsonlLine{"--prompt", 1, record}, o.records, tok).ids;
    } else {
      if (tok.bos_id()) ids.push_back(*tok.bos_id());
      const auto body = tok.encode(*o.prompt);
      ids.insert(ids.end(), body.begin(), body.end());
    }
    std::printf("%s\n", run_one(ids, *o.prompt).first.c_str());
    return 0;
  }
  std::string results;
  int64_t records = 0;
  for (const auto& line : data::read_lines(o.input_file))
    records += line.find_first_not_of(" \t\r") != std::string::npos;
  Progress progress("generate", records, /*enabled=*/true);
  data::read_jsonl(o.input_file, [&](const data::JsonlLine& line) {
    progress.advance();
    const auto p = data::prompt_of(line, o.records, tok);
    auto [text, rec] = run_one(p.ids, line.value);
    rec["line"] = line.line;
    results += rec.dump() + "\n";
    if (o.output_file.empty()) std::cout << rec.dump() << std::endl;
  });
  progress.finish();
  if (!o.output_file.empty()) io::write_file_atomic(o.output_file, results);
  return 0;
}

}  // namespace hyft::recipes
