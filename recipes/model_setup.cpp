#include "recipes/model_setup.h"

#include "adapters/peft_format.h"
#include "adapters/quantize_base.h"
#include "common/error.h"
#include "common/runtime.h"
#include "recipes/hf_files.h"

#include <cstdio>
#include <filesystem>

namespace hyft::recipes {

model::LoadOptions load_options(const ModelOptions& o) {
  model::LoadOptions load;
  load.device = parse_device(o.device);
  load.dtype = o.precision == "auto" ? (load.device.is_cuda() ? at::kBFloat16 : at::kFloat)
                                     : parse_precision(o.precision);
  load.window_size = o.window_size;
  load.global_ratio = o.global_ratio;
  return load;
}

namespace {
void check_global_ratio_applies(const ModelOptions& o, const attention::HybridSettings& resolved) {
  HYFT_CHECK(!(o.global_ratio && *o.global_ratio > 0 && resolved.window_size == 0), "--global-ratio ",
             *o.global_ratio, " has no effect without a window (global tokens only matter when attention is "
             "limited to a window): give --window-size W too, or leave --global-ratio out");
}
}  // namespace

model::LlamaForCausalLM load_model(const ModelOptions& o, const model::LoadOptions& given) {
  HYFT_CHECK(!o.model_dir.empty(), "--model is required; see --help");
  model::LoadOptions load = given;
  // The attention rule an adapter was trained with, unless a flag says otherwise.
  if (!o.adapter_dir.empty()) {
    if (const auto trained = read_trained_with(o.adapter_dir)) {
      const auto& rule = trained->attention;
      if (load.window_size && *load.window_size != rule.window_size)
        std::fprintf(stderr, "notice: --window-size %lld overrides the %lld the adapter was trained with\n",
                     static_cast<long long>(*load.window_size), static_cast<long long>(rule.window_size));
      if (load.global_ratio && *load.global_ratio != rule.global_ratio)
        std::fprintf(stderr, "notice: --global-ratio %g overrides the %g the adapter was trained with\n",
                     *load.global_ratio, rule.global_ratio);
      if (!load.window_size) load.window_size = rule.window_size;
      if (!load.global_ratio) load.global_ratio = rule.global_ratio;
    }
  }
  auto model = model::load_pretrained(o.model_dir, load);
  check_global_ratio_applies(o, model->attention_settings);
  if (!o.adapter_dir.empty())
    adapters::attach_adapter(*model, adapters::read_peft_adapter(o.adapter_dir), o.adapter_dir);
  quantize(*model, o);
  return model;
}

void quantize(model::LlamaForCausalLMImpl& model, const ModelOptions& o) {
  const auto format = quant::parse_format(o.quantize, "--quantize");
  if (format == quant::Format::None) return;
  const auto q = adapters::quantize_base(model, format);
  std::fprintf(stderr, "quantized %lld projections to %s: %.2f GiB -> %.2f GiB\n", (long long)q.projections,
               quant::format_name(format), q.dense_gib, q.quantized_gib);
}

void resolve_chat_template(data::RecordOptions& records, const ModelOptions& o) {
  if (records.chat_template != "model" || records.model_template) return;
  const std::string folder =
      o.tokenizer_file.empty() ? o.model_dir : std::filesystem::path(o.tokenizer_file).parent_path().string();
  HYFT_CHECK(!folder.empty(), "--chat-template model needs --model (the folder whose tokenizer_config.json holds it)");
  records.model_template = std::make_shared<const data::ModelChatTemplate>(data::read_model_chat_template(folder));
}

std::unique_ptr<tokenizer::Tokenizer> find_tokenizer(const ModelOptions& o) {
  auto tok = tokenizer::find_tokenizer(o.model_dir, o.tokenizer_file);
  if (tok) add_adapter_tokens(*tok, o.adapter_dir);
  return tok;
}

}  // namespace hyft::recipes
