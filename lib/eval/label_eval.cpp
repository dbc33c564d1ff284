#include "eval/label_eval.h"

#include "common/error.h"
#include "common/progress.h"
#include "common/strings.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "data/prompt.h"
#include "model/causal_lm_loss.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

namespace hyft::eval {

namespace {

// The record with its completion replaced by `label` (messages: the last assistant turn).
nlohmann::json with_completion(nlohmann::json v, const std::string& label, const data::JsonlLine& line) {
  const auto& spec = data::detect_record_kind(line);
  if (!spec.set_completion)
    line.fail("label evaluation needs prompt/completion, instruction/output or messages records");
  spec.set_completion(v, label);
  return v;
}

}  // namespace

LabelMetrics label_metrics(const std::vector<std::string>& labels, const std::vector<int64_t>& gold,
                           const std::vector<int64_t>& predicted) {
  LabelMetrics m;
  m.labels = labels;
  const size_t K = labels.size();
  m.examples = int64_t(gold.size());
  m.predictions = predicted;
  m.confusion.assign(K, std::vector<int64_t>(K, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < gold.size(); ++i) {
    ++m.confusion[size_t(gold[i])][size_t(predicted[i])];
    correct += gold[i] == predicted[i];
  }
  m.accuracy = gold.empty() ? 0.0 : double(correct) / double(gold.size());
  for (size_t c = 0; c < K; ++c) {
    int64_t tp = m.confusion[c][c], predicted_c = 0, gold_c = 0;
    for (size_t o = 0; o < K; ++o) {
      predicted_c += m.confusion[o][c];
      gold_c += m.confusion[c][o];
    }
    ClassMetrics cm;
    cm.support = gold_c;
    cm.precision = predicted_c ? double(tp) / double(predicted_c) : 0.0;
    cm.recall = gold_c ? double(tp) / double(gold_c) : 0.0;
    cm.f1 = cm.precision + cm.recall > 0 ? 2 * cm.precision * cm.recall / (cm.precision + cm.recall) : 0.0;
    m.macro_f1 += cm.f1 / double(K);
    m.per_class.push_back(cm);
  }
  return m;
}

LabelMetrics evaluate_labels(model::LlamaForCausalLMImpl& model, const tokenizer::Tokenizer& tok,
                             const std::string& path, std::vector<std::string> labels,
                             const data::RecordOptions& options) {
  struct Scored {
    nlohmann::json value;
    int64_t line;
  };
  std::vector<Scored> records;
  std::vector<std::string> golds;
  data::read_jsonl(path, [&](const data::JsonlLine& line) {
    const auto p = data::prompt_of(line, options, tok);
    std::string gold = p.label ? *p.label : trim(p.completion);
    if (gold.empty()) line.fail("no gold label: the record has neither the label field nor a completion");
    golds.push_back(gold);
    records.push_back({line.value, line.line});
  });
  if (labels.empty()) {
    std::set<std::string> distinct(golds.begin(), golds.end());
    labels.assign(distinct.begin(), distinct.end());
  }
  HYFT_CHECK(labels.size() >= 2, path, ": label evaluation needs at least two labels (got ", labels.size(),
             "); pass --labels A,B,...");

  std::vector<int64_t> gold_idx, pred_idx;
  Progress progress("labels", int64_t(records.size()), /*enabled=*/true);
  for (size_t r = 0; r < records.size(); ++r) {
    progress.advance();
    const auto& [value, line_no] = records[r];
    const data::JsonlLine line{path, line_no, value};
    const auto it = std::find(labels.begin(), labels.end(), golds[r]);
    HYFT_CHECK(it != labels.end(), path, ":", line_no, ": gold label '", golds[r], "' is not one of --labels");
    gold_idx.push_back(int64_t(it - labels.begin()));
    pred_idx.push_back(predict_label(model, tok, line, labels, options));
  }
  progress.finish();
  return label_metrics(labels, gold_idx, pred_idx);
}

int64_t predict_label(model::LlamaForCausalLMImpl& model, const tokenizer::Tokenizer& tok,
                      const data::JsonlLine& line, const std::vector<std::string>& labels,
                      const data::RecordOptions& options) {
  at::NoGradGuard no_grad;
  model.eval();
  // One row per candidate: the record with the candidate as its completion,
  // tokenized as in training, so the candidate (+ EOS) carries the only loss.
  std::vector<data::Example> rows;
  for (const auto& label : labels) {
    const nlohmann::json v = with_completion(line.value, label, line);
    rows.push_back(data::tokenize_record(data::parse_record({line.file, line.line, v}, options, tok.vocab_size()),
                                         &tok, false));
  }
  std::vector<const data::Example*> ptrs;
  for (const auto& e : rows) ptrs.push_back(&e);
  const data::Batch batch = data::make_batch(ptrs, model.device());
  const at::Tensor nll = model::row_nll(model, model.hidden_states(batch.input_ids, batch.layout), batch.labels);
  return nll.argmin().item<int64_t>();
}

nlohmann::ordered_json to_json(const LabelMetrics& m) {
  nlohmann::ordered_json j;
  j["labels"] = m.labels;
  j["examples"] = m.examples;
  j["accuracy"] = m.accuracy;
  j["macro_f1"] = m.macro_f1;
  nlohmann::ordered_json per = nlohmann::ordered_json::object();
  for (size_t c = 0; c < m.labels.size(); ++c)
    per[m.labels[c]] = {{"precision", m.per_class[c].precision}, {"recall", m.per_class[c].recall},
                        {"f1", m.per_class[c].f1}, {"support", m.per_class[c].support}};
  j["per_class"] = per;
  j["confusion"] = m.confusion;  // rows gold, columns predicted
  nlohmann::ordered_json predictions = nlohmann::ordered_json::array();
  for (int64_t p : m.predictions) predictions.push_back(m.labels[size_t(p)]);
  j["predictions"] = predictions;  // per record, in file order
  return j;
}

std::string to_table(const LabelMetrics& m) {
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "accuracy    %.4f\nmacro-F1    %.4f   (%lld examples)\n", m.accuracy, m.macro_f1,
                static_cast<long long>(m.examples));
  out << buf;
  std::snprintf(buf, sizeof buf, "%-16s %9s %9s %9s %8s\n", "label", "precision", "recall", "F1", "support");
  out << buf;
  for (size_t c = 0; c < m.labels.size(); ++c) {
    std::snprintf(buf, sizeof buf, "%-16s %9.4f %9.4f %9.4f %8lld\n", m.labels[c].c_str(), m.per_class[c].precision,
                  m.per_class[c].recall, m.per_class[c].f1, static_cast<long long>(m.per_class[c].support));
    out << buf;
  }
  out << "confusion (rows: gold, columns: predicted)\n";
  std::snprintf(buf, sizeof buf, "%-16s", "");
  out << buf;
  for (const auto& l : m.labels) {
    std::snprintf(buf, sizeof buf, " %10s", l.c_str());
    out << buf;
  }
  out << "\n";
  for (size_t g = 0; g < m.labels.size(); ++g) {
    std::snprintf(buf, sizeof buf, "%-16s", m.labels[g].c_str());
    out << buf;
    for (size_t p = 0; p < m.labels.size(); ++p) {
      std::snprintf(buf, sizeof buf, " %10lld", static_cast<long long>(m.confusion[g][p]));
      out << buf;
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace hyft::eval
