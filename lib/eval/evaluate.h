// Held-out evaluation: the token-weighted mean loss (summed negative
// log-likelihood of all target tokens / their count) and perplexity over a set of
// examples, in micro-batches of similar length.
#pragma once

#include "data/example.h"
#include "model/llama.h"

#include <vector>

namespace hyft::eval {

struct EvalOptions {
  int64_t micro_batch = 8;
  bool progress = false;  // a progress line on stderr
};

struct EvalResult {
  double loss = 0.0;        // mean NLL per target token
  double perplexity = 0.0;  // exp(loss)
  int64_t tokens = 0;       // target tokens
  int64_t examples = 0;
  double seconds = 0.0;
};

EvalResult evaluate(model::LlamaForCausalLMImpl& model, const std::vector<data::Example>& examples,
                    const EvalOptions& options);

}  // namespace hyft::eval
