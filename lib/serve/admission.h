// Admission of `hyft serve`: a token bucket that caps requests per second
// (--max-qps), refilled continuously, holding at most `burst` tokens.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

namespace hyft::serve {

class TokenBucket {
 public:
  // rate 0: no cap.
  TokenBucket(double rate, double burst) : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_) {}

  // Takes a token; false when there is none, with the seconds until one is back.
  bool take(double* retry_after_s) {
    if (rate_ <= 0) return true;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    if (retry_after_s) *retry_after_s = (1.0 - tokens_) / rate_;
    return false;
  }
  double rate() const { return rate_; }

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
};

}  // namespace hyft::serve
