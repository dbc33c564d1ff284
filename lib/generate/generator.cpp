#include "generate/generator.h"

#include "common/error.h"
#include "generate/engine.h"

#include <stdexcept>

namespace hyft::generate {

Generation generate(model::LlamaForCausalLMImpl& model, const std::vector<int64_t>& prompt,
                    const GenerateSettings& settings) {
  HYFT_CHECK(!prompt.empty(), "the prompt is empty");
  // The serving engine with one slot, as long as this generation can get.
  EngineOptions o;
  o.slots = 1;
  o.max_len = int64_t(prompt.size()) + settings.max_new_tokens;
  o.max_queue = 1;
  Engine engine(model, o);
  Generation out;
  std::string error;
  Request r;
  r.prompt = prompt;
  r.settings = settings;
  r.on_token = [&](int64_t token) {
    out.tokens.push_back(token);
    return true;
  };
  r.on_done = [&](FinishReason reason, const std::string& e) {
    out.stopped = reason == FinishReason::Stop;
    error = e;
  };
  engine.submit(std::move(r));
  engine.run_until_idle();
  if (!error.empty()) throw std::runtime_error(error);
  return out;
}

}  // namespace hyft::generate
