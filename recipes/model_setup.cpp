#include "recipes/model_setup.h"

#include "adapters/peft_format.h"
#include "common/error.h"
#include "common/runtime.h"

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

model::LlamaForCausalLM load_model(const ModelOptions& o, const model::LoadOptions& load) {
  HYFT_CHECK(!o.model_dir.empty(), "--model is required; see --help");
  auto model = model::load_pretrained(o.model_dir, load);
  if (!o.adapter_dir.empty())
    adapters::attach_adapter(*model, adapters::read_peft_adapter(o.adapter_dir), o.adapter_dir);
  return model;
}

std::unique_ptr<tokenizer::Tokenizer> find_tokenizer(const ModelOptions& o) {
  return tokenizer::find_tokenizer(o.model_dir, o.tokenizer_file);
}

}  // namespace hyft::recipes
