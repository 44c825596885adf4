// The library's thread pool: every item once, exceptions back to the
// caller, nested and concurrent calls; the cpu backend's results are the
// same bits for any thread count; bad thread counts are named.
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpu/passes.hpp"
#include "cpu/thread_pool.hpp"
#include "cpu_test.hpp"

namespace gna::cpu_test {
namespace {

using harness::Tensors;

TEST(ThreadPool, RunsEveryItemOnce) {
  for (int threads : {1, 2, 3, 8}) {
    std::vector<std::atomic<int>> runs(10007);
    cpu::parallel_for(static_cast<int64_t>(runs.size()), threads, [&](int64_t i) { ++runs[i]; });
    for (size_t i = 0; i < runs.size(); ++i) ASSERT_EQ(runs[i].load(), 1) << i << " " << threads;
  }
}

TEST(ThreadPool, ExceptionsReachTheCaller) {
  EXPECT_THROW(cpu::parallel_for(1000, 4,
                                 [](int64_t i) {
                                   if (i == 567) throw std::runtime_error("item 567");
                                 }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> sum{0};
  cpu::parallel_for(100, 4, [&](int64_t i) { sum += i; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(ThreadPool, NestedAndConcurrentCallsFinish) {
  std::atomic<int64_t> count{0};
  auto job = [&] {
    cpu::parallel_for(20, 4, [&](int64_t) {
      cpu::parallel_for(50, 4, [&](int64_t) { ++count; });  // runs on its caller
    });
  };
  std::thread other(job);
  job();
  other.join();
  EXPECT_EQ(count.load(), 2 * 20 * 50);
}

TEST(ThreadPool, NegativeThreadCountIsNamed) {
  Problem p = problem({8}, {axis(3)});
  Tensors t(p, Device{}, harness::Layout::contiguous);
  try {
    forward(p.params, t.forward_args(), on("cpu", -2));
    ADD_FAILURE() << "threads = -2 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "threads");
    EXPECT_NE(std::string(e.what()).find("threads = -2"), std::string::npos) << e.what();
  }
}

// Every work item owns its outputs and sums in a fixed order; so do the
// fused backward's blocks of key tiles, phase after phase.
void expect_same_bits_for_any_thread_count(const Problem& p) {
  SCOPED_TRACE(p.describe());
  std::mt19937_64 rng(4);
  Tensors first(p, Device{}, harness::Layout::padded, true);
  first.randomize_inputs(rng);
  const std::vector<Tensors::Slot> outputs{Tensors::o,  Tensors::lse, Tensors::dq, Tensors::dk,
                                           Tensors::dv, Tensors::dxk, Tensors::dxv};
  for (int threads : {1, 2, 3, 8}) {
    Tensors t(p, Device{}, harness::Layout::padded, true);
    t.copy_from(first);
    forward(p.params, t.forward_args(), on("cpu", threads));
    backward(p.params, t.backward_args(), on("cpu", threads));
    if (threads == 1) {
      first.copy_from(t);
      continue;
    }
    for (Tensors::Slot s : outputs) {
      const TensorView& a = t.view(s);
      const TensorView& b = first.view(s);
      if (!a.defined()) continue;  // no additional KV: no gradient of it
      const harness::Difference d = harness::compare(a, b);
      EXPECT_TRUE(d.finite && d.max_abs == 0.0)
          << harness::slot_name(s) << " differs with " << threads << " threads: " << d.max_abs;
    }
  }
}

TEST(CpuThreads, SameBitsForAnyThreadCount) {
  Problem p = problem({37, 29}, {axis(9, 1, 2), axis(7, 3)});
  p.batch = 2;
  p.heads = 4;
  p.kv_heads = 2;
  p.extra_kv = 5;
  expect_same_bits_for_any_thread_count(p);
  Problem phases = problem({30, 26}, {axis(7), axis(5, 1, 2)});  // fused, 4 phases
  phases.extra_kv = 3;
  ASSERT_EQ(cpu::backward_phases(phases), 4);
  expect_same_bits_for_any_thread_count(phases);
  Problem grouped = problem({21, 18}, {axis(7), axis(5)});  // 4 heads in one vector
  grouped.heads = grouped.kv_heads = 8;
  if (cpu::simd_lanes() == 16) {  // narrower vectors keep one head per tile here
    ASSERT_EQ(cpu::forward_tiling(grouped).head_group, 4);
  }
  expect_same_bits_for_any_thread_count(grouped);
}

#ifdef GNA_CLI_PATH
int run_cli(const std::string& env, const std::string& args, std::string& err) {
  const std::string file = ::testing::TempDir() + "gna_threads_test_err";
  const std::string cmd =
      env + " '" + GNA_CLI_PATH + "' " + args + " >/dev/null 2>'" + file + "' </dev/null";
  const int raw = std::system(cmd.c_str());
  err.clear();
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) err += buf;
    std::fclose(f);
  }
  return raw != -1 && WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
}

TEST(CpuThreads, GnaNumThreadsIsReadAndChecked) {
  const std::string bench = "bench --device cpu --shape 64 --window 9 --iters 1 --warmup 0";
  std::string err;
  EXPECT_EQ(run_cli("GNA_NUM_THREADS=3", bench, err), 0) << err;
  EXPECT_EQ(run_cli("GNA_NUM_THREADS=three", bench, err), 2);
  EXPECT_NE(err.find("GNA_NUM_THREADS = three"), std::string::npos) << err;
  EXPECT_EQ(run_cli("GNA_NUM_THREADS=0", bench, err), 2);
  EXPECT_NE(err.find("positive integer"), std::string::npos) << err;
}
#endif

}  // namespace
}  // namespace gna::cpu_test
