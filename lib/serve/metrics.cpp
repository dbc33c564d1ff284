#include "serve/metrics.h"

#include <cstdio>
#include <algorithm>
#include <numeric>
#include <sstream>

namespace hyft::serve {

void Histogram::observe(double x) {
  size_t i = 0;
  while (i < bounds_.size() && x > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += x;
  ++count_;
}

std::string Histogram::text(const std::string& name, const std::string& help) const {
  std::ostringstream o;
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    o << name << "_bucket{le=\"" << bounds_[i] << "\"} " << cumulative << "\n";
  }
  o << name << "_bucket{le=\"+Inf\"} " << count_ << "\n" << name << "_sum " << sum_ << "\n"
    << name << "_count " << count_ << "\n";
  return o.str();
}

ServerMetrics::ServerMetrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5}),
      duration_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}) {}

int ServerMetrics::level(double value, double normal_below, double alert_above) {
  return value < normal_below ? 0 : value > alert_above ? 2 : 1;
}

void ServerMetrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{endpoint, status}];
  if (status < 400) {
    duration_.observe(seconds);
    recent_latency_.push_back(seconds);
    if (recent_latency_.size() > 100) recent_latency_.pop_front();
  }
  if (status != 429) {  // a rejection by the cap is the cap working, not an error
    recent_error_.push_back(status >= 500);
    if (recent_error_.size() > 1000) recent_error_.pop_front();
  }
}

void ServerMetrics::rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejected_[reason];
}

void ServerMetrics::filtered() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++filtered_;
}

void ServerMetrics::tokens(int64_t prompt, int64_t completion) {
  std::lock_guard<std::mutex> lock(mutex_);
  prompt_tokens_ += prompt;
  completion_tokens_ += completion;
}

void ServerMetrics::first_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_.observe(seconds);
}

void ServerMetrics::per_token(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  tpot_.observe(seconds);
}

void ServerMetrics::log_alert(const std::string& signal, int level, double value) {
  const int before = last_level_[signal];
  last_level_[signal] = level;
  if (level == 2 && before != 2)
    std::fprintf(stderr, "warning: %s is at alert level (%.4g)\n", signal.c_str(), value);
}

std::string ServerMetrics::prometheus(const Gauges& g) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream o;
  o << "# HELP hyft_requests_total Requests answered, by endpoint and HTTP status.\n"
       "# TYPE hyft_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    o << "hyft_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  o << "# HELP hyft_rejected_total Requests refused by admission (rate: --max-qps, queue: --max-queue, "
       "draining: shutting down).\n# TYPE hyft_rejected_total counter\n";
  for (const char* reason : {"rate", "queue", "draining"})
    o << "hyft_rejected_total{reason=\"" << reason << "\"} " << (rejected_.count(reason) ? rejected_.at(reason) : 0)
      << "\n";
  o << "# HELP hyft_filtered_total Outputs the filter replaced by its refusal.\n# TYPE hyft_filtered_total counter\n"
       "hyft_filtered_total " << filtered_ << "\n";
  o << "# TYPE hyft_prompt_tokens_total counter\nhyft_prompt_tokens_total " << prompt_tokens_ << "\n"
    << "# TYPE hyft_completion_tokens_total counter\nhyft_completion_tokens_total " << completion_tokens_ << "\n";
  o << ttft_.text("hyft_time_to_first_token_seconds", "Seconds from arrival to the first generated token.")
    << tpot_.text("hyft_time_per_output_token_seconds", "Seconds between generated tokens.")
    << duration_.text("hyft_request_duration_seconds", "Seconds from arrival to the last token.");
  o << "# TYPE hyft_queue_depth gauge\nhyft_queue_depth " << g.queued << "\n"
    << "# TYPE hyft_running gauge\nhyft_running " << g.running << "\n";
  const double latency = recent_latency_.empty() ? 0.0
      : std::accumulate(recent_latency_.begin(), recent_latency_.end(), 0.0) / double(recent_latency_.size());
  const double errors = recent_error_.empty() ? 0.0
      : double(std::count(recent_error_.begin(), recent_error_.end(), true)) / double(recent_error_.size());
  o << "# HELP hyft_recent_latency_seconds Mean latency of the last 100 answered requests.\n"
       "# TYPE hyft_recent_latency_seconds gauge\nhyft_recent_latency_seconds " << latency << "\n"
    << "# HELP hyft_recent_error_rate Share of 5xx answers among the last 1000 requests.\n"
       "# TYPE hyft_recent_error_rate gauge\nhyft_recent_error_rate " << errors << "\n";
  o << "# HELP hyft_alert_level Service levels: 0 normal, 1 warning, 2 alert.\n# TYPE hyft_alert_level gauge\n";
  const int lat = level(latency, 0.5, 1.0), err = level(errors, 0.005, 0.02);
  o << "hyft_alert_level{signal=\"latency\"} " << lat << "\n"
    << "hyft_alert_level{signal=\"error_rate\"} " << err << "\n";
  log_alert("latency", lat, latency);
  log_alert("error_rate", err, errors);
  if (g.gpu_total_bytes > 0) {
    const double used = g.gpu_used_bytes / g.gpu_total_bytes;
    const int mem = level(used, 0.70, 0.85);
    o << "hyft_alert_level{signal=\"gpu_memory\"} " << mem << "\n"
      << "# TYPE hyft_gpu_memory_used_bytes gauge\nhyft_gpu_memory_used_bytes " << g.gpu_used_bytes << "\n"
      << "# TYPE hyft_gpu_memory_total_bytes gauge\nhyft_gpu_memory_total_bytes " << g.gpu_total_bytes << "\n";
    log_alert("gpu_memory", mem, used);
  }
  return o.str();
}

}  // namespace hyft::serve
