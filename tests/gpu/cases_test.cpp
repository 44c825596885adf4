// Dedicated cases, each aimed at one rule of docs/semantics.md, forward and
// backward, in fp16, bf16 and fp32 (sm90 runs what it supports).
#include "gpu_test.hpp"

namespace gna::gpu_test {
namespace {

using Cases = GpuTest;
using harness::Layout;

// Windows near the borders shift inward (never shrink), per axis.
TEST_P(Cases, BordersSmall) {
  check_both(window_problem({17}, {5}));
  check_both(window_problem({9, 11}, {3, 7}));
  check_both(window_problem({5, 6, 7}, {3, 3, 5}));
  check_both(window_problem({13, 4}, {13, 1}));  // whole axis and k = 1
  GNA_SKIP_IF_NOTHING_RAN();
}

// Even windows reach k/2 left and k/2 - 1 right.
TEST_P(Cases, EvenWindowSmall) {
  check_both(window_problem({20}, {4}));
  check_both(window_problem({10, 12}, {6, 2}));
  check_both(window_problem({21}, {6}, {3}));
  check_both(window_problem({6, 8, 10}, {2, 4, 6}, {1, 2, 3}));
  GNA_SKIP_IF_NOTHING_RAN();
}

// Stride groups queries into runs sharing one window; s == k is blocked attention.
TEST_P(Cases, StrideSmall) {
  check_both(window_problem({24}, {6}, {6}));
  check_both(window_problem({25}, {6}, {6}));  // a partial last block
  check_both(window_problem({29}, {7}, {3}));
  check_both(window_problem({12, 10}, {4, 5}, {4, 5}));
  check_both(window_problem({6, 8, 5}, {3, 4, 2}, {3, 2, 2}));
  GNA_SKIP_IF_NOTHING_RAN();
}

// Dilation splits an axis into interleaved groups of unequal lengths.
TEST_P(Cases, DilationSmall) {
  check_both(window_problem({30}, {5}, {}, {3}));
  check_both(window_problem({31}, {5}, {2}, {4}));
  check_both(window_problem({12, 14}, {3, 3}, {}, {2, 4}));
  check_both(window_problem({6, 8, 9}, {3, 2, 3}, {1, 2, 1}, {2, 3, 2}));
  GNA_SKIP_IF_NOTHING_RAN();
}

// Causal axes: no key after the query; early queries see fewer keys.
TEST_P(Cases, CausalSmall) {
  check_both(window_problem({40}, {40}, {}, {}, {true}));  // causal self attention
  check_both(window_problem({33}, {7}, {}, {}, {true}));
  check_both(window_problem({33}, {7}, {3}, {2}, {true}));
  check_both(window_problem({6, 6, 6}, {3, 3, 3}, {}, {}, {true, false, false}));
  check_both(window_problem({9, 10}, {4, 5}, {2, 1}, {1, 2}, {true, true}));
  GNA_SKIP_IF_NOTHING_RAN();
}

// k == n on every axis, non-causal: plain self attention.
TEST_P(Cases, SelfAttentionSmall) {
  check_both(window_problem({50}, {50}));
  check_both(window_problem({7, 9}, {7, 9}));
  check_both(window_problem({4, 5, 6}, {4, 5, 6}));
  GNA_SKIP_IF_NOTHING_RAN();
}

// Query head h reads kv head h / (Hq / Hkv).
TEST_P(Cases, GroupedQuerySmall) {
  for (auto [heads, kv_heads] : {std::pair{6, 2}, std::pair{4, 1}, std::pair{3, 3}}) {
    Problem p = window_problem({8, 9}, {3, 5}, {1, 2});
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.batch = 2;
    check_both(p);
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

TEST_P(Cases, ValueDimSmall) {
  for (auto [d, dv] : {std::pair{64, 32}, std::pair{32, 128}, std::pair{24, 80}}) {
    Problem p = window_problem({30}, {9}, {2});
    p.head_dim = d;
    p.head_dim_v = dv;
    check_both(p);
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

// The Dv != D pairs sm90's forward compiles (64 / 128, 192 / 128), over
// every parameter: stride, dilation, causal, GQA, additional KV, rank 1-3.
TEST_P(Cases, ValueDimPairsSmall) {
  for (auto [d, dv] : {std::pair{64, 128}, std::pair{192, 128}}) {
    Problem a = window_problem({300}, {33}, {4}, {2});
    Problem b = window_problem({19, 23}, {5, 8}, {1, 3}, {2, 1}, {true, false});
    b.heads = 4;
    b.kv_heads = 2;
    b.extra_kv = 130;  // a full tile of additional KV and a partial one
    Problem c = window_problem({5, 9, 13}, {3, 4, 5}, {1, 2, 5}, {1, 2, 1}, {false, false, true});
    c.batch = 2;
    for (Problem* p : {&a, &b, &c}) {
      p->head_dim = d;
      p->head_dim_v = dv;
      check_both(*p, {DType::f16, DType::bf16});
    }
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

// Additional KV: one softmax over the neighborhood and the extra tokens.
TEST_P(Cases, AdditionalKvSmall) {
  for (int64_t extra : {1, 5, 40}) {
    Problem p = window_problem({7, 8}, {3, 3}, {}, {1, 2}, {false, true});
    p.extra_kv = extra;
    p.heads = 4;
    p.kv_heads = 2;
    check_both(p);
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

// Every layout, on a problem that uses GQA, Dv != D and additional KV.
TEST_P(Cases, LayoutsSmall) {
  Problem p = window_problem({6, 7}, {3, 5}, {1, 2}, {2, 1});
  p.batch = 2;
  p.heads = 4;
  p.kv_heads = 2;
  p.head_dim_v = 32;
  p.extra_kv = 3;
  for (Layout layout :
       {Layout::contiguous, Layout::padded, Layout::heads_first, Layout::strided_dim}) {
    check_both(p, {DType::f16, DType::f32}, layout);
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

// Head dims that are not multiples of 32, and dims beyond one register
// slice of the generic kernels (> 256), which run slice by slice.
TEST_P(Cases, HeadDimsSmall) {
  for (auto [d, dv] :
       {std::pair{1, 1}, std::pair{3, 5}, std::pair{31, 33}, std::pair{32, 32}, std::pair{100, 100},
        std::pair{128, 128}, std::pair{200, 72}, std::pair{256, 256}, std::pair{257, 40},
        std::pair{40, 300}, std::pair{520, 520}}) {
    Problem p = window_problem({5, 6}, {3, 3});
    p.head_dim = d;
    p.head_dim_v = dv;
    p.extra_kv = 2;
    check_both(p, {DType::f16, DType::f32});
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

TEST_P(Cases, ScaleSmall) {
  for (double scale : {0.02, 0.5, 2.0}) {
    Problem p = window_problem({21}, {5});
    p.params.scale = scale;
    check_both(p);
  }
  GNA_SKIP_IF_NOTHING_RAN();
}

GNA_GPU_INSTANTIATE(Cases);

}  // namespace
}  // namespace gna::gpu_test
