// Independent items processed on several threads in blocks (dynamic scheduling):
// the data pipeline's lines, the tokenizer command's texts.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace hyft {

// Threads to use for `requested` (0 or less: one per hardware thread).
inline int thread_count(int requested) {
  return std::max(1, requested > 0 ? requested : int(std::thread::hardware_concurrency()));
}

// Calls f(i) for every i in [0, n), on `threads` threads taking `block` items at a time.
template <typename F>
void parallel_for(size_t n, int threads, F&& f, size_t block = 256) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t start; (start = next.fetch_add(block)) < n;)
      for (size_t i = start; i < std::min(n, start + block); ++i) f(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace hyft
