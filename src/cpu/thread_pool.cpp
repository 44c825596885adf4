#include "cpu/thread_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/check.hpp"

namespace gna::cpu {
namespace {

using Body = std::function<void(int64_t, int64_t)>;

// More threads than this only adds wake-ups; a request beyond it is capped.
constexpr int kMaxThreads = 256;

// How long a worker, and a caller waiting for its workers, spin before
// sleeping. Jobs come in bursts (a backward runs ~8 back to back, a forward
// 3), and a sleeping thread's wake-up costs tens of microseconds (a halted
// virtual CPU more): on 2 cores the kernel's wake and switch paths took ~7%
// of a 56x56-w7 forward's samples.
constexpr std::chrono::microseconds kSpin{50};

// Spins until done() or kSpin has passed; returns done().
template <class Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

class Pool {
 public:
  // Runs one job on `threads` threads, the caller included; false when the
  // pool is already running a job (the caller then runs it alone).
  bool try_run(int64_t count, int threads, const Body& body) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    const int helpers = grow(threads - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      count_ = count;
      // Several chunks per thread let early finishers take over the rest.
      chunk_ = std::max<int64_t>(1, count / (int64_t{helpers + 1} * 8));
      next_.store(0);
      error_ = nullptr;
      helpers_ = helpers;
      open_ = true;
      ++generation_;
    }
    start_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    // Closing the job first keeps late wakers away from a finished body.
    open_ = false;
    if (active_ != 0) {
      lock.unlock();
      spin_until([&] { return active_.load() == 0; });
      lock.lock();
    }
    finished_.wait(lock, [&] { return active_ == 0; });
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  // Starts workers until there are `wanted`; returns how many there are
  // (fewer when the system refuses threads).
  int grow(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      const int index = static_cast<int>(workers_.size());
      try {
        workers_.emplace_back([this, index] { work(index); });
      } catch (const std::system_error&) {
        break;
      }
    }
    return std::min(wanted, static_cast<int>(workers_.size()));
  }

  void work(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      lock.unlock();
      spin_until([&] { return generation_.load() != seen; });
      lock.lock();
      start_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (!open_ || index >= helpers_) continue;
      ++active_;
      lock.unlock();
      drain();
      lock.lock();
      if (--active_ == 0) finished_.notify_all();
    }
  }

  void drain() {
    for (;;) {
      const int64_t begin = next_.fetch_add(chunk_);
      if (begin >= count_) return;
      try {
        (*body_)(begin, std::min(count_, begin + chunk_));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(count_);  // the others stop after their current chunk
      }
    }
  }

  std::mutex busy_;   // held by the caller for the whole job
  std::mutex mutex_;  // guards the job description and the counters below
  std::condition_variable start_, finished_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};  // written under mutex_, read while spinning too
  const Body* body_ = nullptr;
  int64_t count_ = 0;
  int64_t chunk_ = 1;
  std::atomic<int64_t> next_{0};
  int helpers_ = 0;
  std::atomic<int> active_{0};  // the same
  bool open_ = false;
  std::exception_ptr error_;
};

std::atomic<Pool*> g_pool{nullptr};

// The pool is never destroyed: its threads may still sleep in it while the
// process exits. A forked child has none of the parent's threads, so it
// forgets the parent's pool and starts its own on first use.
Pool& pool() {
  Pool* existing = g_pool.load(std::memory_order_acquire);
  if (existing != nullptr) return *existing;
  static const bool forget_after_fork = [] {
    pthread_atfork(nullptr, nullptr, [] { g_pool.store(nullptr); });
    return true;
  }();
  (void)forget_after_fork;
  Pool* fresh = new Pool;
  if (g_pool.compare_exchange_strong(existing, fresh)) return *fresh;
  delete fresh;
  return *existing;
}

int hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, kMaxThreads));
}

// GNA_NUM_THREADS, or 0 when unset; an error message when it is not valid.
struct EnvThreads {
  int count = 0;
  std::string text, error;
};

EnvThreads read_env_threads() {
  EnvThreads env;
  const char* text = std::getenv("GNA_NUM_THREADS");
  if (text == nullptr || *text == '\0') return env;
  env.text = text;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1) {
    env.error = "must be a positive integer (threads of the CPU backends)";
  } else {
    env.count = static_cast<int>(std::min<long>(value, kMaxThreads));
  }
  return env;
}

}  // namespace

int default_thread_count() {
  static const EnvThreads env = read_env_threads();
  if (!env.error.empty()) {
    detail::fail(ErrorKind::value, "GNA_NUM_THREADS", env.text, env.error);
  }
  return env.count > 0 ? env.count : hardware_threads();
}

int thread_count(int requested) {
  if (requested < 0) {
    detail::fail(ErrorKind::value, "threads", requested, "must be >= 0 (0: the default)");
  }
  return requested == 0 ? default_thread_count() : std::min(requested, kMaxThreads);
}

void parallel_for_chunks(int64_t count, int threads, const Body& body) {
  if (count <= 0) return;
  const int used = static_cast<int>(std::min<int64_t>(std::max(threads, 1), count));
  if (used > 1 && pool().try_run(count, used, body)) return;
  body(0, count);
}

}  // namespace gna::cpu

namespace gna {
int cpu_threads(int requested) { return cpu::thread_count(requested); }
}  // namespace gna
