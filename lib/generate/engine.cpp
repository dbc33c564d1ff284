#include "generate/engine.h"

#include "common/error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

namespace hyft::generate {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
    case FinishReason::Timeout: return "timeout";
  }
  return "?";
}

struct Engine::Running {
  Request request;
  std::vector<int64_t> history;  // prompt and generated ids (the repetition penalty reads them)
  int64_t generated() const { return int64_t(history.size() - request.prompt.size()); }
  int64_t position = 0;  // where the next token's key goes
  int64_t last = 0;      // the token the next step feeds
  at::Generator generator;
};

void prepare_for_decoding(model::LlamaForCausalLMImpl& model) {
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  model.fuse_dense_projections();
}

Engine::Engine(model::LlamaForCausalLMImpl& model, EngineOptions options,
               std::shared_ptr<model::RowAdapters> adapters)
    : model_(model), o_(options), adapters_(std::move(adapters)) {
  HYFT_CHECK(o_.slots >= 1 && o_.max_len >= 2 && o_.max_queue >= 0, "engine: bad sizes");
  prepare_for_decoding(model_);
  cache_ = model_.make_slot_cache(o_.slots, o_.max_len);
  graphs_ = std::make_unique<DecodeGraphs>(model_, cache_, adapters_);
  running_.resize(size_t(o_.slots));
}

Engine::~Engine() {
  stop();
  for (int64_t s = 0; s < o_.slots; ++s)
    if (running_[size_t(s)]) finish(s, FinishReason::Cancelled);
  for (auto& r : queue_)
    if (r.on_done) r.on_done(FinishReason::Cancelled, "");
}

bool Engine::submit(Request request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || int64_t(queue_.size()) >= o_.max_queue) return false;
    queue_.push_back(std::move(request));
  }
  wake_.notify_one();
  return true;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  EngineStats s;
  s.queued = int64_t(queue_.size());
  s.running = running_count_;
  s.steps = steps_;
  return s;
}

void Engine::start() {
  thread_ = std::thread([this] { loop(); });
}

void Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Engine::loop() {
  for (;;) {
    bool busy = false;
    try {
      busy = step();
    } catch (const std::exception& e) {  // a failed step ends what was running, not the server
      for (int64_t s = 0; s < o_.slots; ++s)
        if (running_[size_t(s)]) finish(s, FinishReason::Cancelled, e.what());
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) return;
    if (!busy) wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  }
}

void Engine::run_until_idle() {
  while (step()) {
  }
}

void Engine::finish(int64_t slot, FinishReason reason, const std::string& error) {
  std::unique_ptr<Running> r = std::move(running_[size_t(slot)]);
  if (!r) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_count_;
  }
  if (r->request.on_done) r->request.on_done(reason, error);
}

void Engine::take(int64_t slot, int64_t token) {
  Running& r = *running_[size_t(slot)];
  r.history.push_back(token);
  r.last = token;
  const bool go_on = !r.request.on_token || r.request.on_token(token);
  const auto& stops = r.request.settings.stop_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) finish(slot, FinishReason::Stop);
  else if (!go_on) finish(slot, FinishReason::Cancelled);
  else if (r.generated() >= r.request.settings.max_new_tokens || r.position >= o_.max_len)
    finish(slot, FinishReason::Length);
}

void Engine::admit(Request request, int64_t slot) {
  HYFT_CHECK(!request.prompt.empty(), "the prompt is empty");
  HYFT_CHECK(int64_t(request.prompt.size()) < o_.max_len, "the prompt (", request.prompt.size(),
             " tokens) leaves no room under the context of ", o_.max_len, " tokens");
  auto r = std::make_unique<Running>();
  r->request = std::move(request);
  r->history = r->request.prompt;
  r->generator = at::make_generator<at::CPUGeneratorImpl>(r->request.settings.seed);
  const at::Device device = model_.device();
  // Prefill alone, then into the slot: the prompt's keys, and its first token.
  model::KVCache prefill;
  const at::Tensor ids = at::tensor(r->request.prompt, at::kLong).unsqueeze(0).to(device);
  if (adapters_) adapters_->rows = at::full({1}, r->request.adapter, at::TensorOptions().dtype(at::kLong).device(device));
  const at::Tensor logits = model_.forward_cached(ids, prefill).select(1, -1);  // (1, V)
  model_.store_in_slot(prefill, cache_, slot);
  r->position = prefill.length;
  const int64_t token = next_tokens(logits, {&r->history}, {r->request.settings.sampling}, {&r->generator})[0];
  running_[size_t(slot)] = std::move(r);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++running_count_;
  }
  take(slot, token);
}

bool Engine::step() {
  at::NoGradGuard no_grad;
  model_.eval();
  // Admit into free slots, lowest first.
  for (int64_t s = 0; s < o_.slots; ++s) {
    if (running_[size_t(s)]) continue;
    std::optional<Request> next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (queue_.empty()) break;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    auto on_done = next->on_done;
    try {
      admit(std::move(*next), s);
    } catch (const std::exception& e) {  // the prefill, or the caller's callback, failed
      if (running_[size_t(s)]) finish(s, FinishReason::Cancelled, e.what());
      else if (on_done) on_done(FinishReason::Cancelled, e.what());
    }
  }
  const auto now = std::chrono::steady_clock::now();
  int64_t hi = 0;
  for (int64_t s = 0; s < o_.slots; ++s) {
    auto& r = running_[size_t(s)];
    if (r && r->request.deadline && now > *r->request.deadline) finish(s, FinishReason::Timeout);
    if (running_[size_t(s)]) hi = s + 1;
  }
  if (hi == 0) return false;
  // One token for every running sequence; free slots in 0..hi-1 ride along at position 0.
  std::vector<int64_t> ids(size_t(hi), 0), positions(size_t(hi), 0), adapters(size_t(hi), -1);
  for (int64_t s = 0; s < hi; ++s)
    if (const auto& r = running_[size_t(s)])
      ids[size_t(s)] = r->last, positions[size_t(s)] = r->position, adapters[size_t(s)] = r->request.adapter;
  // Every row's next token where the logits are, in one batch (only hi ids cross to
  // the host); free slots decode greedily with no history, and are ignored.
  const at::Tensor logits = graphs_->step(ids, positions, adapters);  // (hi, V)
  static const std::vector<int64_t> kNoHistory;
  std::vector<const std::vector<int64_t>*> histories(size_t(hi), &kNoHistory);
  std::vector<SamplingSettings> sampling(size_t(hi), SamplingSettings{0.0, 1.0, 0, 1.0});
  std::vector<at::Generator*> generators(size_t(hi), nullptr);
  for (int64_t s = 0; s < hi; ++s)
    if (const auto& r = running_[size_t(s)]) {
      histories[size_t(s)] = &r->history;
      sampling[size_t(s)] = r->request.settings.sampling;
      generators[size_t(s)] = &r->generator;
    }
  const std::vector<int64_t> next = next_tokens(logits, histories, sampling, generators);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++steps_;
  }
  for (int64_t s = 0; s < hi; ++s) {
    auto& r = running_[size_t(s)];
    if (!r) continue;
    ++r->position;
    take(s, next[size_t(s)]);
  }
  return true;
}

}  // namespace hyft::generate
