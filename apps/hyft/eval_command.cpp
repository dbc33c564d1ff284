// hyft eval: held-out loss and perplexity, and label metrics (recipes/evaluate.h).
#include "commands.h"

#include "common/progress.h"
#include "common/runtime.h"
#include "recipes/evaluate.h"
#include "shared_options.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace hyft::app {

int eval_command(int argc, char** argv) {
  recipes::EvalOptions o;
  bool json = false;
  OptionTable opts(argv[0], "Held-out mean loss (summed NLL of all target tokens / their count)"
                            " and perplexity of a model on a JSONL dataset.");
  opts.optional("", "data", "JSONL dataset (text, prompt/completion, alpaca, messages or input_ids records)",
                o.data_file);
  opts.flag("", "json", "print one JSON object on stdout", json);
  opts.value("", "micro-batch", "examples per forward pass", o.eval.micro_batch);
  opts.optional("", "labels", "enumerated labels A,B,...: accuracy, per-class P/R/F1, macro-F1, confusion matrix "
                              "('auto': the distinct gold labels)", o.labels);
  opts.at_least<int64_t>("micro-batch", o.eval.micro_batch, 1);
  add_model_options(opts, o.model, /*with_adapter=*/true);
  add_tokenizer_option(opts, o.model, "data");
  add_data_options(opts, o.data);
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!o.model.model_dir.empty(), argv[0], "model");
  require(!o.data_file.empty(), argv[0], "data");
  o.eval.progress = true;  // on stderr; stdout keeps the report (or the JSON)

  const recipes::EvalReport r = recipes::run_eval(o);
  const auto& st = r.data;
  if (json) {
    nlohmann::json j = {{"loss", r.loss.loss},
                        {"perplexity", r.loss.perplexity},
                        {"tokens", r.loss.tokens},
                        {"examples", r.loss.examples},
                        {"seconds", r.loss.seconds},
                        {"precision", precision_name(r.load.dtype)},
                        {"device", r.load.device.str()},
                        {"window_size", r.attention.window_size},
                        {"global_ratio", r.attention.global_ratio},
                        {"truncated", st.truncated},
                        {"dropped", st.dropped_overlength + st.dropped_no_target},
                        {"skipped_lines", st.skipped_lines}};
    if (!o.model.adapter_dir.empty()) j["adapter"] = o.model.adapter_dir;
    if (r.labels) j["label_metrics"] = eval::to_json(*r.labels);
    std::cout << j.dump() << std::endl;
    return 0;
  }
  std::printf("loss        %.6f\nperplexity  %.4f\ntokens      %lld\nexamples    %lld\n", r.loss.loss,
              r.loss.perplexity, static_cast<long long>(r.loss.tokens), static_cast<long long>(r.loss.examples));
  std::printf("(%s on %s, window %lld, global ratio %g, %.1f s)\n", precision_name(r.load.dtype),
              r.load.device.str().c_str(), static_cast<long long>(r.attention.window_size), r.attention.global_ratio,
              r.loss.seconds);
  if (st.truncated || st.dropped_overlength || st.dropped_no_target || st.skipped_lines)
    std::printf("(%lld truncated at max_seq_len, %lld dropped, %lld bad lines skipped)\n",
                static_cast<long long>(st.truncated), static_cast<long long>(st.dropped_overlength + st.dropped_no_target),
                static_cast<long long>(st.skipped_lines));
  if (r.labels) std::printf("\n%s", eval::to_table(*r.labels).c_str());
  return 0;
}

}  // namespace hyft::app
