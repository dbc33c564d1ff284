#include "recipes/evaluate.h"

#include "common/error.h"
#include "common/strings.h"

namespace hyft::recipes {

EvalReport run_eval(const EvalOptions& o) {
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

  if (!o.labels.empty()) {
    HYFT_CHECK(tok, "--labels needs a tokenizer (the model folder's tokenizer.model or --tokenizer)");
    std::vector<std::string> labels;
    if (o.labels != "auto") labels = split_list(o.labels);
    report.labels = eval::evaluate_labels(*model, *tok, o.data_file, labels, o.data.records);
  }
  return report;
}

}  // namespace hyft::recipes
