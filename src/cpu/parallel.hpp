// A minimal parallel-for over [0, count) for the CPU backend: work is handed
// out in chunks from an atomic counter, so uneven rows (causal, borders)
// balance across threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace gna::cpu {

inline int thread_count() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min(hw, 64u));
}

template <typename Body>
void parallel_for(int64_t count, Body body) {
  const int threads = static_cast<int>(std::min<int64_t>(thread_count(), count));
  if (threads <= 1) {
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, count / (threads * 8));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    try {
      for (;;) {
        const int64_t begin = next.fetch_add(chunk);
        if (begin >= count) return;
        const int64_t end = std::min(count, begin + chunk);
        for (int64_t i = begin; i < end; ++i) body(i);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next.store(count);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace gna::cpu
