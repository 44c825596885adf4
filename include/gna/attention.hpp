// Entry points: forward and backward of generalized neighborhood attention.
//
// Layout is heads-last: Q, K [B, X0, (X1, (X2)), H, D], V [.., Hkv, Dv],
// O [.., H, Dv], LSE [B, X0, (X1, (X2)), H] in fp32. Optional additional KV:
// extra_k [B, Nx, Hkv, D], extra_v [B, Nx, Hkv, Dv], attended by every query.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "gna/problem.hpp"
#include "gna/tensor.hpp"
#include "gna/tiles.hpp"

namespace gna {

struct ForwardArgs {
  TensorView query, key, value;
  TensorView output;                   // written
  TensorView lse;                      // written when defined
  TensorView extra_key, extra_value;   // optional additional KV
};

struct BackwardArgs {
  TensorView query, key, value, output, lse, grad_output;
  TensorView grad_lse;                 // optional: gradient flowing into LSE
  TensorView extra_key, extra_value;
  TensorView grad_query, grad_key, grad_value;  // written
  TensorView grad_extra_key, grad_extra_value;  // written when extra KV given
};

struct Options {
  std::string backend = "auto";  // "auto", "cpu", "reference", "cuda-generic", "sm90"
  void* stream = nullptr;        // cudaStream_t for CUDA backends
  std::optional<TileConfig> tiles;  // overrides the tile chooser (sm90)
  // Bitwise-identical gradients across runs. The sm90 backward then adds
  // each query tile's dQ contributions in a fixed order instead of as they
  // come; the other backends are deterministic anyway.
  bool deterministic = false;
  int threads = 0;  // CPU backends' threads; 0: GNA_NUM_THREADS, else the hardware's
  // Check the call and choose its backend, run nothing: callers that
  // allocate the outputs (the Python package) validate before allocating.
  bool check_only = false;
};

// Builds the Problem the tensors describe and checks every input rule.
Problem make_problem(const Params& params, const ForwardArgs& args);
Problem make_problem(const Params& params, const BackwardArgs& args);

// Each returns the name of the backend that ran. Empty problems launch
// nothing and leave empty outputs untouched; the backward of one still
// zeroes key/value gradients that have elements (kv heads without query
// heads, additional KV without query tokens), since no query attends to them.
std::string forward(const Params& params, const ForwardArgs& args, const Options& options = {});
std::string backward(const Params& params, const BackwardArgs& args, const Options& options = {});

// Dense attention over token sequences (NATTEN's `attention`), including
// cross-attention (key length != query length) and variable-length batches
// in a packed layout. Q [B, Lq, H, D], K [B, Lk, Hkv, D], V [B, Lk, Hkv, Dv],
// O [B, Lq, H, Dv], LSE [B, Lq, H]; no additional KV. Runs on every backend:
// each sequence is expressed as neighborhood problems the backends already
// run (docs/natten.md, "Cross-attention and variable length").
struct DenseParams {
  bool is_causal = false;       // needs equal query and key lengths per sequence
  std::optional<double> scale;  // default 1/sqrt(head_dim)
};

// Packed variable-length batches: B == 1 and sequence i is query tokens
// [query_offsets[i], query_offsets[i + 1]) attending to key tokens
// [key_offsets[i], key_offsets[i + 1]). Both lists have (sequences + 1)
// entries, start at 0, never decrease and end at Lq and Lk. Empty lists:
// every batch element is one sequence of Lq queries and Lk keys.
struct Sequences {
  std::vector<int64_t> query_offsets, key_offsets;
  bool packed() const { return !query_offsets.empty() || !key_offsets.empty(); }
};

// Return the backend of the last call made ("" when nothing ran). Gradients
// of keys no query attends to are zero.
std::string attention_forward(const DenseParams& params, const ForwardArgs& args,
                              const Sequences& sequences = {}, const Options& options = {});
std::string attention_backward(const DenseParams& params, const BackwardArgs& args,
                               const Sequences& sequences = {}, const Options& options = {});

enum class Pass { forward, backward };

struct BackendInfo {
  std::string name;
  bool compiled = false;  // built into this library
  std::string reason;     // why it cannot run the asked problem, empty if it can
};

// Every known backend, in the order `auto` tries them, with the reason each
// cannot run `problem` on `device` (empty reason: it can).
std::vector<BackendInfo> backends(const Problem& problem, Pass pass, Device device);

// Names of all backends compiled into this build.
std::vector<std::string> backend_names();

// Number of CUDA devices usable by this build (0 without CUDA or GPU).
int cuda_device_count();

// Threads the CPU backends use for a call whose Options::threads is
// `requested`: itself when positive, else GNA_NUM_THREADS when set, else
// the hardware's thread count. All calls share one pool of threads.
int cpu_threads(int requested = 0);

}  // namespace gna
