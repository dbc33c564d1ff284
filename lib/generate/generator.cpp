#include "generate/generator.h"

#include "common/error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

namespace hyft::generate {

Generation generate(model::LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt,
                    const GenerateSettings& settings) {
  HYFT_CHECK(!prompt.empty(), "the prompt is empty");
  at::NoGradGuard no_grad;
  model.eval();
  const at::Device device = model.device();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(settings.seed);
  std::vector<int64_t> history = prompt;
  model::KVCache cache;
  Generation out;
  at::Tensor input = at::tensor(prompt, at::kLong).unsqueeze(0).to(device);  // (1, T)
  for (int64_t i = 0; i < settings.max_new_tokens; ++i) {
    const at::Tensor logits = model.forward_cached(input, cache).select(1, -1).squeeze(0).to(at::kCPU, at::kFloat);
    const int64_t token = next_token(logits, history, settings.sampling, gen);
    out.tokens.push_back(token);
    history.push_back(token);
    if (std::find(settings.stop_ids.begin(), settings.stop_ids.end(), token) != settings.stop_ids.end()) {
      out.stopped = true;
      break;
    }
    input = at::full({1, 1}, token, at::TensorOptions().dtype(at::kLong).device(device));
  }
  return out;
}

}  // namespace hyft::generate
