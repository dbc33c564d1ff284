#include "model_options.h"

#include "adapters/peft_format.h"
#include "common/error.h"
#include "common/runtime.h"

namespace hyft::app {

void add_model_options(cxxopts::Options& opts, bool with_adapter) {
  opts.add_options("model")
      ("model", "Hugging Face model folder (config.json + safetensors)", cxxopts::value<std::string>())
      ("device", "auto, cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))
      ("precision", "fp32, bf16 or fp16 (auto: bf16 on GPU, fp32 on CPU)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("window-size", "hybrid attention window W, 0 = unlimited (default: config.json's sliding_window)",
       cxxopts::value<int64_t>())
      ("global-ratio", "share r of global tokens in [0, 1) (default: config.json's global_ratio)",
       cxxopts::value<double>());
  if (with_adapter)
    opts.add_options("model")("adapter", "PEFT LoRA adapter folder to apply (unmerged)", cxxopts::value<std::string>());
}

model::LoadOptions load_options_from(const cxxopts::ParseResult& args) {
  model::LoadOptions load;
  load.device = parse_device(args["device"].as<std::string>());
  const std::string precision = args["precision"].as<std::string>();
  load.dtype = precision == "auto" ? (load.device.is_cuda() ? at::kBFloat16 : at::kFloat) : parse_precision(precision);
  if (args.count("window-size")) load.window_size = args["window-size"].as<int64_t>();
  if (args.count("global-ratio")) load.global_ratio = args["global-ratio"].as<double>();
  return load;
}

model::LlamaForCausalLM load_model(const cxxopts::ParseResult& args, const model::LoadOptions& load) {
  HYFT_CHECK(args.count("model"), "--model is required; see --help");
  auto model = model::load_pretrained(args["model"].as<std::string>(), load);
  if (args.count("adapter")) {
    const std::string dir = args["adapter"].as<std::string>();
    adapters::attach_adapter(*model, adapters::read_peft_adapter(dir), dir);
  }
  return model;
}

}  // namespace hyft::app
