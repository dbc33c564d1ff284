#include "recipes/evaluate.h"

#include "common/error.h"
#include "common/runtime.h"
#include "common/strings.h"

#include <cmath>
#include <stdexcept>

namespace hyft::recipes {

EvalReport run_eval(const EvalOptions& options) {
  EvalOptions o = options;
  resolve_chat_template(o.data.records, o.model);
  HYFT_CHECK(!o.data_file.empty(), "hyft eval: --data is required; see 'hyft eval --help'");
  HYFT_CHECK(o.eval.micro_batch > 0, "--micro-batch must be positive");
  EvalReport report;
  report.load = load_options(o.model);
  auto model = load_model(o.model, report.load);
  report.attention = model->attention_settings;
  const auto tok = find_tokenizer(o.model);
  if (tok) tokenizer::check_fits_model(*tok, model->config().vocab_size);
  const auto dataset = data::load_dataset(o.data_file, tok.get(), model->config().vocab_size, o.data);
  report.data = dataset.stats;

  report.loss = eval::evaluate(*model, dataset.examples, o.eval);
  if (!std::isfinite(report.loss.loss))
    throw std::runtime_error("the loss is not finite (" + std::to_string(report.loss.loss) + ") although every "
                             "weight is: the computation overflows in " + precision_name(report.load.dtype) +
                             (report.load.dtype == at::kFloat ? "; check the data and the model's config.json"
                                                              : "; try --precision fp32 (or bf16 instead of fp16)"));

  if (!o.labels.empty()) {
    HYFT_CHECK(tok, "--labels needs a tokenizer (the model folder's tokenizer.model or --tokenizer)");
    std::vector<std::string> labels;
    if (o.labels != "auto") labels = split_list(o.labels);
    report.labels = eval::evaluate_labels(*model, *tok, o.data_file, labels, o.data.records);
  }
  return report;
}

}  // namespace hyft::recipes
