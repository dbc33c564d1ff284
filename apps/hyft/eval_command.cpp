// hyft eval: the held-out loss of SPEC 6 on a JSONL dataset.
#include "commands.h"


#include "common/error.h"
#include "common/progress.h"
#include "common/runtime.h"
#include "data/dataset.h"
#include "data_options.h"
#include "model_options.h"
#include "eval/evaluate.h"
#include "eval/label_eval.h"
#include "model/load.h"

#include <torch/cuda.h>

#include <cstdio>
#include <optional>
#include <sstream>
#include <iostream>

namespace hyft::app {

int eval_command(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Held-out mean loss (summed NLL of all target tokens / their count)"
                                 " and perplexity of a model on a JSONL dataset.");
  opts.add_options()
      ("data", "JSONL dataset (text, prompt/completion, alpaca, messages or input_ids records)",
       cxxopts::value<std::string>())
      ("json", "print one JSON object on stdout")
      ("micro-batch", "examples per forward pass", cxxopts::value<int64_t>()->default_value("8"))
      ("labels", "enumerated labels A,B,...: accuracy, per-class P/R/F1, macro-F1, confusion matrix "
                 "('auto': the distinct gold labels)", cxxopts::value<std::string>());
  add_model_options(opts, /*with_adapter=*/true);
  add_data_options(opts);
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  for (const char* required : {"model", "data"})
    HYFT_CHECK(args.count(required), "hyft eval: --", required, " is required; see 'hyft eval --help'");
  HYFT_CHECK(args["micro-batch"].as<int64_t>() > 0, "--micro-batch must be positive");

  const model::LoadOptions load = load_options_from(args);
  auto model = load_model(args, load);
  const std::string model_dir = args["model"].as<std::string>();
  const auto tok = optional_tokenizer(args, model_dir);
  if (tok) tokenizer::check_fits_model(*tok, model->config().vocab_size);
  const auto dataset = data::load_dataset(args["data"].as<std::string>(), tok.get(), model->config().vocab_size,
                                          data_options_from(args));
  const auto& examples = dataset.examples;

  eval::EvalOptions options;
  options.micro_batch = args["micro-batch"].as<int64_t>();
  options.progress = !args.count("json") && Progress::stderr_is_terminal();
  const eval::EvalResult r = eval::evaluate(*model, examples, options);

  std::optional<eval::LabelMetrics> label_metrics;
  if (args.count("labels")) {
    HYFT_CHECK(tok, "--labels needs a tokenizer (the model folder's tokenizer.model or --tokenizer)");
    std::vector<std::string> labels;
    const std::string spec = args["labels"].as<std::string>();
    if (spec != "auto") {
      std::stringstream ss(spec);
      for (std::string l; std::getline(ss, l, ',');)
        if (!l.empty()) labels.push_back(l);
    }
    auto ro = data_options_from(args).records;
    label_metrics = eval::evaluate_labels(*model, *tok, args["data"].as<std::string>(), labels, ro);
  }

  const auto& attn = model->attention_settings;
  if (args.count("json")) {
    nlohmann::json j = {{"loss", r.loss},
                        {"perplexity", r.perplexity},
                        {"tokens", r.tokens},
                        {"examples", r.examples},
                        {"seconds", r.seconds},
                        {"precision", precision_name(load.dtype)},
                        {"device", load.device.str()},
                        {"window_size", attn.window_size},
                        {"global_ratio", attn.global_ratio},
                        {"truncated", dataset.stats.truncated},
                        {"dropped", dataset.stats.dropped_overlength + dataset.stats.dropped_no_target},
                        {"skipped_lines", dataset.stats.skipped_lines}};
    if (args.count("adapter")) j["adapter"] = args["adapter"].as<std::string>();
    if (label_metrics) j["label_metrics"] = eval::to_json(*label_metrics);
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("loss        %.6f\nperplexity  %.4f\ntokens      %lld\nexamples    %lld\n", r.loss,
                r.perplexity, static_cast<long long>(r.tokens), static_cast<long long>(r.examples));
    std::printf("(%s on %s, window %lld, global ratio %g, %.1f s)\n", precision_name(load.dtype),
                load.device.str().c_str(), static_cast<long long>(attn.window_size), attn.global_ratio,
                r.seconds);
    const auto& st = dataset.stats;
    if (st.truncated || st.dropped_overlength || st.dropped_no_target || st.skipped_lines)
      std::printf("(%lld truncated at max_seq_len, %lld dropped, %lld bad lines skipped)\n",
                  static_cast<long long>(st.truncated),
                  static_cast<long long>(st.dropped_overlength + st.dropped_no_target),
                  static_cast<long long>(st.skipped_lines));
    if (label_metrics) std::printf("\n%s", eval::to_table(*label_metrics).c_str());
  }
  return 0;
}

}  // namespace hyft::app
