// The serving recipe behind `hyft serve`: one model (and adapter) behind an
// OpenAI-style HTTP API (/v1/completions, /v1/chat/completions, streamed by
// server-sent events or whole; /v1/models, /health, /metrics), decoding every
// request in one continuous batch (generate/engine.h). Admission: a cap on
// requests per second and a bounded queue (429 with Retry-After beyond them),
// several LoRA adapters on one base chosen per request,
// a timeout per request; SIGTERM stops admitting (503), lets running requests
// finish within a grace period, and exits 0. An audit log takes every request; an
// output filter (a classifier adapter) can replace what it blocks.
#pragma once

#include "data/records.h"
#include "recipes/model_setup.h"

#include <cstdint>
#include <string>

namespace hyft::recipes {

struct ServeOptions {
  ModelOptions model;
  data::RecordOptions records;  // how chat messages become a prompt
  std::string host = "127.0.0.1";
  int64_t port = 8000;                 // 0: any free port (printed)
  std::string served_name;             // the model's name in the API ("": the model folder's name)
  // Several LoRA adapters on the one base, chosen per request by `model`:
  // "name=DIR,name2=DIR2" (a bare DIR is named after its folder); the base keeps its name.
  std::string adapters;
  int64_t max_batch = 16;              // sequences decoded together
  int64_t max_context = 0;             // tokens of one sequence (0: the model's, at most 4096)
  int64_t max_queue = 64;              // requests waiting for a slot
  std::string max_qps = "0";           // requests per second admitted: N (0: no cap) or auto (80% of a calibration)
  int64_t request_timeout_s = 300;     // a request running longer ends
  int64_t default_max_tokens = 256;    // chat requests without max_tokens (completions: 16, as OpenAI)
  int64_t max_body_mb = 8;             // larger request bodies get 413
  int64_t threads = 64;                // HTTP worker threads (each stream holds one)
  double shutdown_grace_s = 30;        // SIGTERM: how long running requests may finish
  std::string audit_log;               // JSONL of every request ("" = none)
  // The output filter: a classifier adapter on the same base (trained with `hyft
  // finetune` on text labelled with filter_labels), scored as `eval --labels`
  // scores; an output whose most likely label is not the first is replaced by the
  // refusal (finish_reason "content_filter"), counted and logged.
  std::string filter_adapter;
  std::string filter_labels = "ok,blocked";
  std::string filter_refusal = "I can't help with that.";
};

// Serves until SIGTERM/SIGINT; returns the exit code.
int run_serve(const ServeOptions& options);

}  // namespace hyft::recipes
