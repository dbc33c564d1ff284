// What `hyft serve` counts and exposes at /metrics (Prometheus text format):
// requests by endpoint and status, rejections, tokens, latency histograms (time to
// first token, per output token, whole request), and the service levels of the
// deployment guide as alert gauges (0 normal, 1 warning, 2 alert): GPU memory
// (normal below 70% used, alert above 85%), latency of the last 100 requests
// (normal below 0.5 s, alert above 1 s) and error rate of the last 1000 (normal
// below 0.5%, alert above 2%). A level that reaches alert is logged once.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hyft::serve {

struct Gauges {
  int64_t queued = 0, running = 0;
  double gpu_used_bytes = -1, gpu_total_bytes = -1;  // -1: no GPU
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double x);
  std::string text(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  int64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();
  void request(const std::string& endpoint, int status, double seconds);
  void rejected(const std::string& reason);
  void filtered();  // an output the filter replaced
  void tokens(int64_t prompt, int64_t completion);
  void first_token(double seconds);
  void per_token(double seconds);
  std::string prometheus(const Gauges& g);
  // 0 normal, 1 warning, 2 alert.
  static int level(double value, double normal_below, double alert_above);

 private:
  void log_alert(const std::string& signal, int level, double value);
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<std::string, int64_t> rejected_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0, filtered_ = 0;
  Histogram ttft_, tpot_, duration_;
  std::deque<double> recent_latency_;  // the last 100 answered requests
  std::deque<bool> recent_error_;      // the last 1000 requests: 5xx?
  std::map<std::string, int> last_level_;
};

}  // namespace hyft::serve
