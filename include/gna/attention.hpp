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

// Or, for CUDA tensors, the same offsets in int32 device memory (NATTEN's
// cumulative_seqlen_Q/KV), read there by cuda-generic's packed kernels:
// nothing waits for the GPU. The host cannot check such offsets without a
// sync, so the GPU does: before any other work, one kernel checks every rule
// above, plus max_seqlen (query_max / key_max, when >= 0) against every
// length. A broken rule makes that call write NaN into all its outputs
// (O, LSE, gradients; no read or write ever leaves the tensors) and, when
// `status` is given, is recorded there (OffsetsStatus, first problem wins,
// set to zeros by the caller) for the caller to read when it wants. A
// length above its max_seqlen is recorded but the result stays right: the
// kernels do not use the maxima.
struct DeviceOffsets {
  const int32_t* query = nullptr;  // (sequences + 1) entries
  const int32_t* key = nullptr;    // (sequences + 1) entries
  int64_t sequences = 0;
  int64_t query_max = -1, key_max = -1;  // max_seqlen_Q/KV; < 0: not given
  int32_t* status = nullptr;             // 4 int32 on the device (OffsetsStatus), optional
};

// What DeviceOffsets::status holds after a call with bad offsets: the rule
// broken (0: none), the entry or sequence, the value found and the one
// expected. The codes past kFatal only record a too small max_seqlen.
struct OffsetsStatus {
  enum Code : int32_t {
    ok = 0,
    query_start = 1,       // cumulative_seqlen_Q[index] = value, expected 0
    key_start = 2,         // cumulative_seqlen_KV[index] = value, expected 0
    query_decreasing = 3,  // cumulative_seqlen_Q[index] = value < expected = [index - 1]
    key_decreasing = 4,    // cumulative_seqlen_KV[index] = value < expected = [index - 1]
    query_end = 5,         // cumulative_seqlen_Q[index] = value, expected the query tokens
    key_end = 6,           // cumulative_seqlen_KV[index] = value, expected the key tokens
    no_keys = 7,           // sequence index: value queries, no keys
    causal_lengths = 8,    // sequence index: value queries, expected keys (is_causal)
    kFatal = 8,            // codes up to here make the call's outputs NaN
    query_above_max = 9,   // sequence index: value queries > expected = max_seqlen_Q
    key_above_max = 10,    // sequence index: value keys > expected = max_seqlen_KV
  };
  int32_t code = ok, index = 0, value = 0, expected = 0;
};

// The message for a status (empty for ok), naming the argument and rule.
std::string describe(const OffsetsStatus& status);

// Return the backend of the last call made ("" when nothing ran). Gradients
// of keys no query attends to are zero.
std::string attention_forward(const DenseParams& params, const ForwardArgs& args,
                              const Sequences& sequences = {}, const Options& options = {});
std::string attention_backward(const DenseParams& params, const BackwardArgs& args,
                               const Sequences& sequences = {}, const Options& options = {});
// The same on offsets in GPU memory (DeviceOffsets): cuda-generic's packed
// kernels, on options.stream, never waiting for the GPU. options.backend
// must be "auto" or "cuda-generic". Any sequence lengths (0 included, more
// queries than keys too); key gradients of keys no query sees are zero.
std::string attention_forward(const DenseParams& params, const ForwardArgs& args,
                              const DeviceOffsets& offsets, const Options& options = {});
std::string attention_backward(const DenseParams& params, const BackwardArgs& args,
                               const DeviceOffsets& offsets, const Options& options = {});

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
