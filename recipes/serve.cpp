#include "recipes/serve.h"

#include "adapters/multi_lora.h"
#include "common/error.h"
#include "common/gpu_memory.h"
#include "common/interrupt.h"
#include "common/strings.h"
#include "data/prompt.h"
#include "eval/label_eval.h"
#include "generate/engine.h"
#include "serve/admission.h"
#include "serve/audit_log.h"
#include "serve/metrics.h"
#include "serve/openai_api.h"

#ifdef HYFT_HAVE_HTTPLIB
// cpp-httplib listens with a backlog of 5 pending connections, too few for a burst
// of clients; the worker pool (--threads) still bounds what runs at once.
#define CPPHTTPLIB_LISTEN_BACKLOG 1024
#include <httplib.h>
#endif

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

namespace hyft::recipes {

#ifdef HYFT_HAVE_HTTPLIB
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using serve::ApiError;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// A folder's own name (the last component of the normalised path), as the API names
// the model and adapters served from it.
std::string folder_name(const std::string& dir) {
  return std::filesystem::path(dir).lexically_normal().filename().string();
}

// One request between the HTTP thread that answers it and the engine's thread.
struct Call {
  std::mutex m;
  std::condition_variable cv;
  std::vector<int64_t> tokens;
  bool done = false, stop_hit = false;
  generate::FinishReason reason = generate::FinishReason::Stop;
  std::string error;
  std::atomic<bool> cancel{false};
  Clock::time_point start = Clock::now(), first, last;
};

class Server {
 public:
  Server(const ServeOptions& o, double max_qps) : o_(o), audit_(o.audit_log) {
    model_ = load_model(o_.model, load_options(o_.model));
    std::shared_ptr<model::RowAdapters> rows;
    if (!o_.adapters.empty()) {  // several adapters, one base
      HYFT_CHECK(o_.model.adapter_dir.empty(), "give --adapter DIR (one) or --adapters name=DIR,... (several), not both");
      std::vector<adapters::LoraAdapter> list;
      std::vector<std::string> sources;
      for (const auto& item : split_list(o_.adapters)) {
        const size_t eq = item.find('=');
        const std::string dir = eq == std::string::npos ? item : item.substr(eq + 1);
        const std::string name = eq == std::string::npos ? folder_name(dir) : item.substr(0, eq);
        HYFT_CHECK(!name.empty() && !dir.empty(), "--adapters '", item, "': give name=DIR (or DIR)");
        HYFT_CHECK(std::find(adapter_names_.begin(), adapter_names_.end(), name) == adapter_names_.end(),
                   "--adapters: the name '", name, "' is given twice");
        list.push_back(adapters::read_peft_adapter(dir));
        sources.push_back(dir);
        adapter_names_.push_back(name);
      }
      rows = adapters::attach_adapters(*model_, list, sources);
      std::printf("%zu adapters on one base: %s\n", list.size(), join_list(adapter_names_).c_str());
    }
    tok_ = std::make_unique<tokenizer::Tokenizer>(tokenizer::load_tokenizer(o_.model.model_dir, o_.model.tokenizer_file));
    tokenizer::check_fits_model(*tok_, model_->config().vocab_size);
    stop_ids_ = model_->config().eos_token_ids;
    if (tok_->eos_id() && std::find(stop_ids_.begin(), stop_ids_.end(), *tok_->eos_id()) == stop_ids_.end())
      stop_ids_.push_back(*tok_->eos_id());
    name_ = o_.served_name.empty() ? folder_name(o_.model.model_dir) : o_.served_name;
    if (name_.empty()) name_ = "model";
    generate::EngineOptions eo;
    eo.slots = o_.max_batch;
    eo.max_len = o_.max_context > 0 ? o_.max_context
                                    : std::min<int64_t>(4096, model_->config().max_position_embeddings);
    eo.max_queue = o_.max_queue;
    engine_ = std::make_unique<generate::Engine>(*model_, eo, rows);
    if (!o_.filter_adapter.empty()) {
      ModelOptions fo = o_.model;
      fo.adapter_dir = o_.filter_adapter;
      filter_ = load_model(fo, load_options(fo));
      filter_labels_ = split_list(o_.filter_labels);
      HYFT_CHECK(filter_labels_.size() >= 2, "--filter-labels: give at least two labels, the allowed one first "
                 "(ok,blocked)");
      std::printf("output filter: %s, labels %s (all but '%s' block)\n", o_.filter_adapter.c_str(),
                  o_.filter_labels.c_str(), filter_labels_[0].c_str());
    }
    if (max_qps < 0) max_qps = 0.8 * calibrate();
    bucket_ = std::make_unique<serve::TokenBucket>(max_qps, std::max(1.0, max_qps));
  }

  int run() {
    httplib::Server http;
    http.new_task_queue = [n = size_t(o_.threads)] { return new httplib::ThreadPool(n); };
    http.set_payload_max_length(size_t(o_.max_body_mb) << 20);
    http.set_error_handler([&](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler's own error
      const std::string what = res.status == 413 ? "the request body is larger than --max-body-mb"
                               : res.status == 404 ? "no such endpoint"
                                                   : "the request failed";
      res.set_content(serve::error_json(ApiError(res.status, what)).dump(), "application/json");
      if (req.method != "POST") return;
      metrics_.request(req.path, res.status, 0.0);
      audit_.write({{"time", utc_now()}, {"endpoint", req.path}, {"status", res.status}, {"error", what}});
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      }
      res.status = 500;
      res.set_content(serve::error_json(ApiError(500, what, "", "server_error")).dump(), "application/json");
    });
    http.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
      res.status = draining_ ? 503 : 200;
      res.set_content(json({{"status", draining_ ? "draining" : "ok"}}).dump(), "application/json");
    });
    http.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
      json data = json::array();
      data.push_back({{"id", name_}, {"object", "model"}, {"created", created_}, {"owned_by", "hyft"}});
      for (const auto& a : adapter_names_)
        data.push_back({{"id", a}, {"object", "model"}, {"created", created_}, {"owned_by", "hyft"},
                        {"parent", name_}});
      res.set_content(json({{"object", "list"}, {"data", data}}).dump(), "application/json");
    });
    http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      serve::Gauges g;
      const auto s = engine_->stats();
      g.queued = s.queued;
      g.running = s.running;
      std::tie(g.gpu_used_bytes, g.gpu_total_bytes) = device_memory_bytes(model_->device());
      res.set_content(metrics_.prometheus(g), "text/plain; version=0.0.4");
    });
    http.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, serve::Endpoint::Completions);
    });
    http.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, serve::Endpoint::ChatCompletions);
    });

    int port = int(o_.port);
    if (port == 0) port = http.bind_to_any_port(o_.host);
    else if (!http.bind_to_port(o_.host, port)) port = -1;
    HYFT_CHECK(port > 0, "--host ", o_.host, " --port ", o_.port, ": cannot listen there (in use, or not this "
               "machine's address); pick another --port");
    engine_->start();
    std::printf("serving %s on http://%s:%d (batch %lld, context %lld tokens, queue %lld%s)\n", name_.c_str(),
                o_.host.c_str(), port, (long long)engine_->options().slots, (long long)engine_->options().max_len,
                (long long)o_.max_queue,
                rate_note().c_str());
    std::fflush(stdout);
    std::thread watcher([&] { watch_signals(http); });
    http.listen_after_bind();
    watcher.join();
    engine_->stop();
    std::printf("stopped\n");
    return 0;
  }

 private:
  // SIGTERM/SIGINT: stop admitting, let running requests finish (up to the grace
  // period), then stop listening.
  void watch_signals(httplib::Server& http) {
    while (!interrupt_signal()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    draining_ = true;
    std::printf("shutting down: no new requests; waiting up to %.0f s for %lld running and %lld queued\n",
                o_.shutdown_grace_s, (long long)engine_->stats().running, (long long)engine_->stats().queued);
    std::fflush(stdout);
    const auto t0 = Clock::now();
    while (seconds_since(t0) < o_.shutdown_grace_s) {
      const auto s = engine_->stats();
      if (s.running == 0 && s.queued == 0 && open_ == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    http.stop();
  }

  std::vector<int64_t> prompt_ids(const serve::CompletionRequest& r) {
    if (r.endpoint == serve::Endpoint::Completions) {
      std::vector<int64_t> ids;
      if (tok_->bos_id()) ids.push_back(*tok_->bos_id());
      const auto body = tok_->encode(r.prompt);
      ids.insert(ids.end(), body.begin(), body.end());
      return ids;
    }
    try {
      return data::prompt_of(data::JsonlLine{"request", 1, json({{"messages", r.messages}})}, o_.records, *tok_).ids;
    } catch (const UserError& e) {
      throw ApiError(400, std::string("'messages': ") + e.what(), "messages");
    }
  }

  std::string rate_note() const {
    if (bucket_->rate() <= 0) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, ", at most %.1f requests/s", bucket_->rate());
    return buf;
  }

  // --max-qps auto: the requests per second the engine finishes at most, from one
  // full batch of short requests (32 prompt + 32 new tokens) decoded together.
  double calibrate() {
    const int64_t n = engine_->options().slots;
    const int64_t vocab = model_->config().vocab_size;
    auto submit_batch = [&](int64_t a, int64_t b) {  // n greedy requests of distinct prompts
      for (int64_t i = 0; i < n; ++i) {
        generate::Request q;
        for (int64_t t = 0; t < 32; ++t) q.prompt.push_back((i * a + t * b) % vocab);
        q.settings.sampling = {0.0, 1.0, 0, 1.0};
        q.settings.max_new_tokens = 32;
        engine_->submit(std::move(q));
      }
    };
    submit_batch(131, 17);
    engine_->run_until_idle();  // the first pass captures the decoding graphs
    submit_batch(197, 29);
    const auto t0 = Clock::now();
    engine_->run_until_idle();
    const double rps = double(n) / std::max(1e-6, seconds_since(t0));
    std::printf("calibrated: %lld requests of 32 + 32 tokens at once finish at %.1f requests/s; --max-qps auto "
                "admits %.1f (80%%)\n", (long long)n, rps, 0.8 * rps);
    return rps;
  }

  // The filter's verdict on an output: the label's name and whether it blocks.
  std::pair<std::string, bool> judge(const std::string& text) {
    std::lock_guard<std::mutex> lock(filter_mutex_);
    const json record = {{"prompt", text.empty() ? std::string(" ") : text}, {"completion", ""}};
    const int64_t k = eval::predict_label(*filter_, *tok_, data::JsonlLine{"output", 1, record}, filter_labels_,
                                          o_.records);
    return {filter_labels_[size_t(k)], k != 0};
  }

  // Applies the filter (when there is one) to a finished output: the text to send,
  // the finish reason, and the verdict for the audit log.
  json apply_filter(std::string& text, std::string& reason) {
    if (!filter_) return nullptr;
    const auto [label, blocked] = judge(text);
    json verdict = {{"label", label}, {"blocked", blocked}};
    if (blocked) {
      verdict["blocked_output"] = text;  // the audit keeps what was generated
      metrics_.filtered();
      std::fprintf(stderr, "filter: an output judged '%s' was replaced by the refusal\n", label.c_str());
      text = o_.filter_refusal;
      reason = "content_filter";
    }
    return verdict;
  }

  void handle(const httplib::Request& req, httplib::Response& res, serve::Endpoint endpoint) {
    const char* path = endpoint == serve::Endpoint::Completions ? "/v1/completions" : "/v1/chat/completions";
    const auto start = Clock::now();
    serve::CompletionRequest r;
    try {
      if (draining_) {
        metrics_.rejected("draining");
        throw ApiError(503, "the server is shutting down", "", "server_error");
      }
      r = serve::parse_request(req.body, endpoint);
      const int64_t adapter = adapter_of(r.model);
      double retry = 0;
      if (!bucket_->take(&retry)) {
        metrics_.rejected("rate");
        res.set_header("Retry-After", std::to_string(int64_t(std::ceil(retry))));
        throw ApiError(429, "more than --max-qps requests per second; retry later", "", "rate_limit_error");
      }
      start_generation(r, adapter, res, path, start);
    } catch (const ApiError& e) {
      res.status = e.status;
      res.set_content(serve::error_json(e).dump(), "application/json");
      metrics_.request(path, e.status, seconds_since(start));
      audit_.write({{"time", utc_now()}, {"endpoint", path}, {"status", e.status}, {"error", e.what()}});
    }
  }

  // The adapter a request's `model` names: -1 for the base (or no name), k for
  // --adapters' k-th; a 404 for any other name.
  int64_t adapter_of(const std::string& model) const {
    if (model.empty() || model == name_) return -1;
    const auto named = std::find(adapter_names_.begin(), adapter_names_.end(), model);
    if (named != adapter_names_.end()) return int64_t(named - adapter_names_.begin());
    std::string have = "'" + name_ + "'";
    for (const auto& a : adapter_names_) have += ", '" + a + "'";
    throw ApiError(404, "the model '" + model + "' does not exist; this server has " + have, "model");
  }

  void start_generation(const serve::CompletionRequest& r, int64_t adapter, httplib::Response& res, const char* path,
                        Clock::time_point start) {
    const std::vector<int64_t> prompt = prompt_ids(r);
    const int64_t context = engine_->options().max_len;
    const int64_t room = context - int64_t(prompt.size());
    if (room < 1)
      throw ApiError(400, "the prompt is " + std::to_string(prompt.size()) + " tokens; the context is " +
                              std::to_string(context) + " (--max-context)", "prompt");
    const int64_t max_tokens = r.max_tokens.value_or(
        r.endpoint == serve::Endpoint::Completions ? std::min<int64_t>(16, room) : std::min(o_.default_max_tokens, room));
    if (max_tokens > room)
      throw ApiError(400, "max_tokens " + std::to_string(max_tokens) + " and the prompt's " +
                              std::to_string(prompt.size()) + " tokens exceed the context of " + std::to_string(context) +
                              " tokens", "max_tokens");
    auto call = std::make_shared<Call>();
    call->start = start;
    generate::Request q;
    q.prompt = prompt;
    q.settings.sampling = r.sampling;
    q.settings.max_new_tokens = max_tokens;
    q.settings.stop_ids = stop_ids_;
    q.settings.seed = r.seed.value_or(next_seed_++);
    q.deadline = start + std::chrono::seconds(o_.request_timeout_s);
    q.adapter = adapter;
    // The engine's thread only records; decoding and stop strings are the answering
    // thread's work (final_text), which cancels the request at a stop string.
    q.on_token = [call](int64_t token) {
      std::lock_guard<std::mutex> lock(call->m);
      const auto now = Clock::now();
      if (call->tokens.empty()) call->first = now;
      call->last = now;
      call->tokens.push_back(token);
      call->cv.notify_all();
      return !call->cancel;
    };
    q.on_done = [call](generate::FinishReason reason, const std::string& error) {
      std::lock_guard<std::mutex> lock(call->m);
      call->done = true;
      call->reason = reason;
      call->error = error;
      call->cv.notify_all();
    };
    if (!engine_->submit(std::move(q))) {
      metrics_.rejected("queue");
      res.set_header("Retry-After", "1");
      throw ApiError(429, "the queue is full (--max-queue " + std::to_string(o_.max_queue) + "); retry later", "",
                     "rate_limit_error");
    }
    const std::string id = (r.endpoint == serve::Endpoint::Completions ? "cmpl-" : "chatcmpl-") +
                           std::to_string(created_) + "-" + std::to_string(++requests_);
    const int64_t created = std::time(nullptr);
    if (!r.stream) {
      for (size_t seen = 0;;) {  // with stop strings, each new token is looked at
        std::unique_lock<std::mutex> lock(call->m);
        call->cv.wait(lock, [&] { return call->done || (!r.stop.empty() && call->tokens.size() > seen); });
        seen = call->tokens.size();
        if (call->done) break;
        lock.unlock();
        final_text(*call, r);
      }
      auto [text, reason] = final_text(*call, r);
      if (!call->error.empty()) throw ApiError(500, "generation failed: " + call->error, "", "server_error");
      if (call->reason == generate::FinishReason::Timeout)
        throw ApiError(504, "the request ran longer than --request-timeout (" + std::to_string(o_.request_timeout_s) +
                                " s)", "", "timeout");
      const serve::Usage usage{int64_t(prompt.size()), int64_t(call->tokens.size())};
      const json verdict = apply_filter(text, reason);
      res.set_content(serve::response_json(r, id, created, name_, text, reason, usage).dump(-1, ' ', false,
                                                                                            json::error_handler_t::replace),
                      "application/json");
      finished(*call, r, path, 200, text, reason, usage, id, verdict);
      return;
    }
    ++open_;
    auto sent = std::make_shared<size_t>(0);  // bytes of text sent
    auto seen = std::make_shared<size_t>(0);  // tokens looked at
    auto first = std::make_shared<bool>(true);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, call, r, id, created, path, sent, seen, first, n_prompt = int64_t(prompt.size())](size_t,
                                                                                               httplib::DataSink& sink) {
          std::unique_lock<std::mutex> lock(call->m);
          call->cv.wait_for(lock, std::chrono::milliseconds(200),
                            [&] { return call->done || call->tokens.size() > *seen; });
          const bool done = call->done;
          *seen = call->tokens.size();
          lock.unlock();
          auto [text, reason] = final_text(*call, r);
          json verdict = nullptr;
          if (filter_ && !done) text.clear();  // filtered: nothing goes out before the verdict
          if (filter_ && done) verdict = apply_filter(text, reason);
          if (!done && !filter_) {  // hold back what may still change: a split character, the start of a stop string
            size_t keep = text.size();
            while (keep >= 3 && text.compare(keep - 3, 3, "\xEF\xBF\xBD") == 0) keep -= 3;
            for (const auto& s : r.stop) keep = std::min(keep, text.size() >= s.size() - 1 ? text.size() - (s.size() - 1) : 0);
            text.resize(std::max(keep, *sent));
          }
          auto send = [&](const json& chunk) {
            const std::string event = "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
            return sink.write(event.data(), event.size());
          };
          if (text.size() > *sent || *first) {
            if (!send(serve::chunk_json(r, id, created, name_, text.substr(*sent), std::nullopt, *first))) {
              call->cancel = true;  // the client left: the engine drops the request at its next token
              finished(*call, r, path, 499, text, "cancelled", {n_prompt, int64_t(call->tokens.size())}, id);
              return false;
            }
            *sent = text.size();
            *first = false;
          }
          if (!done) return true;
          const std::string finish = call->reason == generate::FinishReason::Timeout ? "length" : reason;
          send(serve::chunk_json(r, id, created, name_, "", finish, false));
          const std::string end = "data: [DONE]\n\n";
          sink.write(end.data(), end.size());
          sink.done();
          finished(*call, r, path, 200, text, finish, {n_prompt, int64_t(call->tokens.size())}, id, verdict);
          return true;
        },
        [this, call](bool) {  // the stream ended, whichever way
          call->cancel = true;
          --open_;
        });
  }

  // The text so far (the stop token left out, cut at a stop string) and the finish
  // reason. A stop string, once found, ends the request (the engine drops it at its
  // next token).
  std::pair<std::string, std::string> final_text(Call& call, const serve::CompletionRequest& r) {
    std::vector<int64_t> visible;
    bool stop_hit;
    generate::FinishReason reason;
    {
      std::lock_guard<std::mutex> lock(call.m);
      visible = call.tokens;
      stop_hit = call.stop_hit;
      reason = call.reason;
    }
    if (!visible.empty() && std::find(stop_ids_.begin(), stop_ids_.end(), visible.back()) != stop_ids_.end())
      visible.pop_back();
    std::string text = tok_->decode(visible);
    const size_t cut = serve::find_stop(text, r.stop);
    if (cut != std::string::npos) {
      text.resize(cut);
      stop_hit = true;
      std::lock_guard<std::mutex> lock(call.m);
      call.stop_hit = true;
      call.cancel = true;
    }
    const bool stopped = stop_hit || reason == generate::FinishReason::Stop;
    return {text, stopped ? "stop" : "length"};
  }

  void finished(Call& call, const serve::CompletionRequest& r, const char* path, int status, const std::string& text,
                const std::string& reason, const serve::Usage& usage, const std::string& id,
                const json& verdict = nullptr) {
    metrics_.request(path, status, seconds_since(call.start));
    metrics_.tokens(usage.prompt_tokens, usage.completion_tokens);
    if (!call.tokens.empty()) {
      metrics_.first_token(std::chrono::duration<double>(call.first - call.start).count());
      if (call.tokens.size() > 1)
        metrics_.per_token(std::chrono::duration<double>(call.last - call.first).count() / double(call.tokens.size() - 1));
    }
    if (!audit_.enabled()) return;
    json entry = {{"id", id}, {"time", utc_now()}, {"endpoint", path}, {"status", status},
                  {"model", r.model.empty() ? name_ : r.model},  // the base's name, or the adapter's
                  {"settings", {{"temperature", r.sampling.temperature}, {"top_p", r.sampling.top_p},
                                {"top_k", r.sampling.top_k}, {"repetition_penalty", r.sampling.repetition_penalty},
                                {"max_tokens", r.max_tokens ? json(*r.max_tokens) : json()},
                                {"seed", r.seed ? json(*r.seed) : json()}, {"stop", r.stop}, {"stream", r.stream}}},
                  {"output", text}, {"finish_reason", reason},
                  {"usage", {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens}}},
                  {"filter", verdict}};
    if (r.endpoint == serve::Endpoint::Completions) entry["prompt"] = r.prompt;
    else entry["messages"] = r.messages;
    audit_.write(entry);
  }

  ServeOptions o_;
  model::LlamaForCausalLM model_{nullptr};
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  std::vector<int64_t> stop_ids_;
  std::string name_;
  std::vector<std::string> adapter_names_;  // --adapters, in order: adapter k is adapter_names_[k]
  std::unique_ptr<generate::Engine> engine_;
  std::unique_ptr<serve::TokenBucket> bucket_;
  model::LlamaForCausalLM filter_{nullptr};
  std::vector<std::string> filter_labels_;
  std::mutex filter_mutex_;
  serve::ServerMetrics metrics_;
  serve::AuditLog audit_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> open_{0}, requests_{0};
  std::atomic<uint64_t> next_seed_{1};
  const int64_t created_ = std::time(nullptr);
};

}  // namespace

#endif  // HYFT_HAVE_HTTPLIB

int run_serve(const ServeOptions& options) {
#ifndef HYFT_HAVE_HTTPLIB
  (void)options;
  fail("this hyft was built without cpp-httplib, so it cannot serve; install it (Debian/Ubuntu: libcpp-httplib-dev, "
       "scripts/setup.sh does) and rebuild");
#else
  ServeOptions o = options;
  HYFT_CHECK(!o.model.model_dir.empty(), "hyft serve: --model is required; see 'hyft serve --help'");
  HYFT_CHECK(o.max_batch >= 1, "--max-batch must be at least 1");
  HYFT_CHECK(o.max_queue >= 0, "--max-queue must be >= 0");
  double max_qps = -1;  // auto
  if (o.max_qps != "auto") {
    char* end = nullptr;
    max_qps = std::strtod(o.max_qps.c_str(), &end);
    HYFT_CHECK(!o.max_qps.empty() && end && *end == '\0' && std::isfinite(max_qps) && max_qps >= 0, "--max-qps '",
               o.max_qps, "': give requests per second (a number >= 0; 0 = no cap) or auto (80% of a calibration)");
  }
  HYFT_CHECK(o.port >= 0 && o.port < 65536, "--port must be in 0..65535 (0 = any free port)");
  resolve_chat_template(o.records, o.model);
  Server server(o, max_qps);
  return server.run();
#endif
}

}  // namespace hyft::recipes
