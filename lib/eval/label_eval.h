// Enumerated-label evaluation: for each record the prediction is the
// allowed label whose continuation (label text + EOS, in the record's template)
// is most likely after the prompt; accuracy, per-class precision, recall and F1,
// macro-F1 and the confusion matrix against the record's gold label.
#pragma once

#include "data/jsonl.h"
#include "data/records.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hyft::eval {

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;  // gold count
};

struct LabelMetrics {
  std::vector<std::string> labels;
  int64_t examples = 0;
  double accuracy = 0, macro_f1 = 0;
  std::vector<ClassMetrics> per_class;            // in `labels` order
  std::vector<std::vector<int64_t>> confusion;    // [gold][predicted]
  std::vector<int64_t> predictions;               // per example, index into labels
};

// Metrics from gold and predicted class indices.
LabelMetrics label_metrics(const std::vector<std::string>& labels, const std::vector<int64_t>& gold,
                           const std::vector<int64_t>& predicted);

// Scores every record of `path` (prompt/completion, Alpaca or messages records
// whose gold is the label field, else the completion). `labels` empty: the
// distinct gold labels, sorted.
LabelMetrics evaluate_labels(model::LlamaForCausalLMImpl& model, const tokenizer::Tokenizer& tok,
                             const std::string& path, std::vector<std::string> labels,
                             const data::RecordOptions& options);

// The index in `labels` of the most likely label for one record (its
// completion, if any, ignored): each label + EOS put in as the completion, scored
// as in training. `hyft serve --filter-adapter` judges outputs this way.
int64_t predict_label(model::LlamaForCausalLMImpl& model, const tokenizer::Tokenizer& tok,
                      const data::JsonlLine& record, const std::vector<std::string>& labels,
                      const data::RecordOptions& options);

nlohmann::ordered_json to_json(const LabelMetrics& m);
std::string to_table(const LabelMetrics& m);  // human-readable report

}  // namespace hyft::eval
