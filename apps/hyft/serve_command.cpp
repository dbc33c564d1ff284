// hyft serve: an OpenAI-style HTTP server over one model (recipes/serve.h).
#include "commands.h"

#include "common/interrupt.h"
#include "recipes/serve.h"
#include "shared_options.h"

namespace hyft::app {

int serve_command(int argc, char** argv) {
  install_interrupt_handlers();  // SIGTERM drains the server
  recipes::ServeOptions o;
  OptionTable opts(argv[0], "Serve a model (and adapter) over HTTP with an OpenAI-style API: /v1/completions, "
                            "/v1/chat/completions (streamed with \"stream\": true), /v1/models, /health, /metrics. "
                            "Requests are decoded together in one continuous batch.");
  add_model_options(opts, o.model, /*with_adapter=*/true);
  add_tokenizer_option(opts, o.model, "");
  add_record_options(opts, o.records, "");
  opts.value("server", "host", "address to listen on (0.0.0.0: every interface)", o.host);
  opts.value("server", "port", "port to listen on (0: any free port, printed)", o.port);
  opts.value("server", "served-name", "the model's name in the API (default: the model folder's name)",
             o.served_name);
  opts.value("server", "adapters",
             "several LoRA adapters on the one base, chosen per request by its model: name=DIR,name2=DIR2",
             o.adapters);
  opts.value("server", "max-batch", "sequences decoded together (KV-cache slots)", o.max_batch);
  opts.value("server", "max-context", "tokens of one sequence, prompt and output (0: the model's, at most 4096)",
             o.max_context);
  opts.value("server", "max-queue", "requests waiting for a slot; beyond it 429", o.max_queue);
  opts.value("server", "max-qps",
             "requests admitted per second, beyond it 429 with Retry-After: N (0: no cap) or auto (80% of what a "
             "short calibration at start-up finishes)",
             o.max_qps);
  opts.value("server", "request-timeout", "seconds a request may run", o.request_timeout_s);
  opts.value("server", "default-max-tokens", "chat requests without max_tokens generate at most this many",
             o.default_max_tokens);
  opts.value("server", "max-body-mb", "larger request bodies get 413", o.max_body_mb);
  opts.value("server", "threads", "HTTP worker threads (each open stream holds one)", o.threads);
  opts.value("server", "shutdown-grace", "on SIGTERM, seconds running requests may take to finish",
             o.shutdown_grace_s);
  opts.optional("server", "audit-log", "append every request and response to this JSONL file", o.audit_log);
  opts.optional("filter", "filter-adapter", "classifier adapter (on the same base) that judges every output",
                o.filter_adapter);
  opts.value("filter", "filter-labels", "the classifier's labels, the allowed one first; the others block",
             o.filter_labels);
  opts.value("filter", "filter-refusal", "what replaces a blocked output", o.filter_refusal);
  opts.at_least<int64_t>("max-batch", o.max_batch, 1);
  opts.at_least<int64_t>("max-context", o.max_context, 0, "0 = the model's");
  opts.at_least<int64_t>("max-queue", o.max_queue, 0);
  opts.at_least<int64_t>("request-timeout", o.request_timeout_s, 1);
  opts.at_least<int64_t>("default-max-tokens", o.default_max_tokens, 1);
  opts.at_least<int64_t>("max-body-mb", o.max_body_mb, 1);
  opts.at_least<int64_t>("threads", o.threads, 2);
  opts.at_least<double>("shutdown-grace", o.shutdown_grace_s, 0.0);
  if (!parse_or_help(opts, argc, argv)) return 0;
  return recipes::run_serve(o);
}

}  // namespace hyft::app
