// Continuous batching: sequences join and leave a running batch at token
// boundaries. The keys and values live in a slotted cache allocated once
// (model::SlotCache: a slot per running sequence, up to max_len tokens); a new
// request is prefilled alone into a free slot, then every running sequence
// advances one token per step in one forward pass over slots 0..hi (the lowest
// free slot is taken first, so the batch stays short). Each request has its own
// sampling settings and seeded generator, so its tokens are the ones it gets
// alone. `generate` (generator.h) runs one request through the same engine. On a
// GPU the decoding step replays CUDA graphs (decode_graphs.h).
#pragma once

#include "generate/decode_graphs.h"
#include "generate/generator.h"
#include "model/llama.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hyft::generate {

struct EngineOptions {
  int64_t slots = 16;       // sequences decoded together at most
  int64_t max_len = 2048;   // prompt + generated tokens of one sequence
  int64_t max_queue = 64;   // requests waiting for a slot at most
};

enum class FinishReason { Stop, Length, Cancelled, Timeout };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "timeout"

struct Request {
  std::vector<int64_t> prompt;
  GenerateSettings settings;  // max_new_tokens, stop ids, sampling, seed
  std::optional<std::chrono::steady_clock::time_point> deadline;
  int64_t adapter = -1;  // with several adapters on the model (model::RowAdapters): which; -1 none
  // Each new token, in order (a stop id included); return false to stop here.
  std::function<bool(int64_t token)> on_token;
  // Once, at the end (also after a failure, with `error` set).
  std::function<void(FinishReason reason, const std::string& error)> on_done;
};

struct EngineStats {
  int64_t running = 0, queued = 0;
  int64_t steps = 0;  // decoding steps so far
};

// What the engine does to a model before decoding with it (and `hyft bench --decode
// --check` before its graph and eager steps): freezes every weight (nothing trains
// here) and asks for a layer's dense q/k/v and gate/up bases to be fused, so a stream
// runs one GEMV for each (model/fused_projections.h).
void prepare_for_decoding(model::LlamaForCausalLMImpl& model);

class Engine {
 public:
  // `adapters`: the model's per-row adapter choice, when it serves several.
  Engine(model::LlamaForCausalLMImpl& model, EngineOptions options,
         std::shared_ptr<model::RowAdapters> adapters = nullptr);
  ~Engine();  // stops the thread; requests still queued or running end Cancelled

  // Queues a request; false when the queue is full (the caller answers "busy").
  // A prompt that leaves no room under max_len is refused by the caller first.
  bool submit(Request request);
  // Runs on a thread of its own until stop(); or, without start(), the caller
  // drives it with run_until_idle().
  void start();
  void stop();
  void run_until_idle();
  EngineStats stats() const;
  const EngineOptions& options() const { return o_; }

 private:
  struct Running;
  bool step();  // admits what fits, decodes one token for every running sequence; false when idle
  void admit(Request request, int64_t slot);
  void take(int64_t slot, int64_t token);  // the slot's next token: to the caller, then does it end?
  void finish(int64_t slot, FinishReason reason, const std::string& error = "");
  void loop();

  model::LlamaForCausalLMImpl& model_;
  EngineOptions o_;
  model::SlotCache cache_;
  std::shared_ptr<model::RowAdapters> adapters_;
  std::unique_ptr<DecodeGraphs> graphs_;  // the decoding step, as CUDA graphs on a GPU
  std::vector<std::unique_ptr<Running>> running_;  // by slot; null when free
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  int64_t steps_ = 0, running_count_ = 0;  // under mutex_ (stats() reads them from other threads)
  std::thread thread_;
};

}  // namespace hyft::generate
