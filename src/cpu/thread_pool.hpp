// The library's one pool of CPU worker threads, shared by the reference and
// the cpu backend. It starts on first use and stays, so a call costs a
// wake-up rather than thread starts, and not even that within 50 us of the
// previous call's end (workers spin that long before sleeping). Work goes
// out in chunks from an atomic counter, so uneven items (borders, causal
// windows) balance; since every item writes only its own outputs, results
// never depend on which thread ran which item, nor on the thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace gna::cpu {

// Threads a call uses when it asks for none in particular: GNA_NUM_THREADS
// when set (read once), else the hardware's. Throws gna::Error naming
// GNA_NUM_THREADS when that is not a positive integer.
int default_thread_count();

// Threads for a call that asks for `requested` (0: the default). Throws
// gna::Error naming `threads` for a negative request.
int thread_count(int requested);

// Runs body(begin, end) over consecutive chunks covering [0, count), on up to
// `threads` threads of which the caller is one. A call made while the pool is
// busy (from another thread, or from inside a body) runs on its caller alone.
// The first exception a body throws is rethrown here once all have stopped.
void parallel_for_chunks(int64_t count, int threads,
                         const std::function<void(int64_t begin, int64_t end)>& body);

// The same, one item at a time.
template <typename Body>
void parallel_for(int64_t count, int threads, Body&& body) {
  parallel_for_chunks(count, threads, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) body(i);
  });
}

}  // namespace gna::cpu
