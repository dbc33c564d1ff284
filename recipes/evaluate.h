// The evaluation recipe behind `hyft eval`: a model (and adapter) on a JSONL
// dataset, the held-out loss and perplexity, and with `labels` the enumerated-label
// metrics (accuracy, per-class P/R/F1, macro-F1, confusion).
#pragma once

#include "data/dataset.h"
#include "eval/evaluate.h"
#include "eval/label_eval.h"
#include "recipes/model_setup.h"

#include <optional>
#include <string>

namespace hyft::recipes {

struct EvalOptions {
  ModelOptions model;
  std::string data_file;
  data::DatasetOptions data;
  eval::EvalOptions eval;  // micro-batch, progress line
  std::string labels;      // "A,B,...", "auto" (the distinct gold labels) or "" (no label metrics)
};

struct EvalReport {
  eval::EvalResult loss;
  data::DatasetStats data;
  std::optional<eval::LabelMetrics> labels;
  model::LoadOptions load;                 // the device and dtype used
  attention::HybridSettings attention;     // the rule used
};

EvalReport run_eval(const EvalOptions& options);

}  // namespace hyft::recipes
