// hyft eval: the held-out loss of SPEC 6 on a JSONL dataset.
#include "commands.h"

#include "adapters/peft_format.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/runtime.h"
#include "data/dataset.h"
#include "data_options.h"
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
      ("model", "Hugging Face model folder (config.json + safetensors)", cxxopts::value<std::string>())
      ("adapter", "PEFT LoRA adapter folder to apply (unmerged)", cxxopts::value<std::string>())
      ("data", "JSONL dataset (text, prompt/completion, alpaca, messages or input_ids records)",
       cxxopts::value<std::string>())
      ("json", "print one JSON object on stdout")
      ("precision", "fp32, bf16 or fp16 (auto: bf16 on GPU, fp32 on CPU)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("device", "auto, cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))
      ("window-size", "sliding window W (0 = unlimited; default: config.json's sliding_window)",
       cxxopts::value<int64_t>())
      ("global-ratio", "share r of global tokens in [0, 1) (default: config.json's global_ratio)",
       cxxopts::value<double>())
      ("micro-batch", "examples per forward pass", cxxopts::value<int64_t>()->default_value("8"))
      ("labels", "enumerated labels A,B,...: accuracy, per-class P/R/F1, macro-F1, confusion matrix "
                 "('auto': the distinct gold labels)", cxxopts::value<std::string>());
  add_data_options(opts);
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  for (const char* required : {"model", "data"})
    HYFT_CHECK(args.count(required), "hyft eval: --", required, " is required; see 'hyft eval --help'");
  HYFT_CHECK(args["micro-batch"].as<int64_t>() > 0, "--micro-batch must be positive");

  model::LoadOptions load;
  load.device = parse_device(args["device"].as<std::string>());
  const std::string precision = args["precision"].as<std::string>();
  load.dtype = precision == "auto" ? (load.device.is_cuda() ? at::kBFloat16 : at::kFloat)
                                   : parse_precision(precision);
  if (args.count("window-size")) load.window_size = args["window-size"].as<int64_t>();
  if (args.count("global-ratio")) load.global_ratio = args["global-ratio"].as<double>();

  auto model = model::load_pretrained(args["model"].as<std::string>(), load);
  if (args.count("adapter")) {
    const std::string dir = args["adapter"].as<std::string>();
    adapters::attach_adapter(*model, adapters::read_peft_adapter(dir), dir);
  }
  const std::string model_dir = args["model"].as<std::string>();
  const auto tok = optional_tokenizer(args, model_dir);
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
                        {"global_ratio", attn.global_ratio}};
    if (args.count("adapter")) j["adapter"] = args["adapter"].as<std::string>();
    if (label_metrics) j["label_metrics"] = eval::to_json(*label_metrics);
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("loss        %.6f\nperplexity  %.4f\ntokens      %lld\nexamples    %lld\n", r.loss,
                r.perplexity, static_cast<long long>(r.tokens), static_cast<long long>(r.examples));
    std::printf("(%s on %s, window %lld, global ratio %g, %.1f s)\n", precision_name(load.dtype),
                load.device.str().c_str(), static_cast<long long>(attn.window_size), attn.global_ratio,
                r.seconds);
    if (label_metrics) std::printf("\n%s", eval::to_table(*label_metrics).c_str());
  }
  return 0;
}

}  // namespace hyft::app
