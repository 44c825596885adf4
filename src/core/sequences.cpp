// Dense attention over token sequences (cross-attention, packed variable
// length) as neighborhood problems every backend already runs: r queries
// attending to all of lk >= r keys is a 1-D window of r over the first r
// keys plus the other lk - r keys as additional KV (one joint softmax). A
// sequence with more queries than keys is cut into pieces of at most lk
// queries; their key gradients add up (on the host for CPU tensors).
// Offsets that live on the GPU (Sequences::device) take another road:
// cuda-generic's packed kernels, which read them there (no host sync).
#include <algorithm>
#include <climits>
#include <string>
#include <tuple>
#include <vector>

#include "core/check.hpp"
#include "core/half.hpp"
#include "gna/attention.hpp"
#if GNA_WITH_CUDA
#include "cuda/generic/packed.hpp"
#endif

namespace gna {

using detail::concat;
using detail::fail;

namespace {

// Tokens [start, start + count) of dimension 1 of a [B, tokens, ...] view.
TensorView tokens(const TensorView& t, int64_t start, int64_t count) {
  TensorView v = t;
  if (!t.defined()) return v;
  v.shape[1] = count;
  if (count > 0 && t.data != nullptr) {
    v.data = static_cast<char*>(t.data) + start * t.stride[1] * dtype_size(t.dtype);
  }
  return v;
}

void check_rank4(const TensorView& t, const char* name) {
  if (!t.defined()) fail(ErrorKind::type, name, "None", "this tensor is required");
  if (t.ndim != 4) {
    fail(ErrorKind::type, concat(name, ".ndim"), t.ndim,
         "expected 4 dimensions [batch, tokens, heads, head_dim]");
  }
}

void check_tokens(const TensorView& t, const char* name, int64_t expected, const char* what) {
  if (t.defined() && t.ndim == 4 && t.shape[1] != expected) {
    fail(ErrorKind::value, concat(name, ".shape[1]"), t.shape[1],
         concat("expected ", expected, " (", what, ")"));
  }
}

// One sequence: query tokens [q0, q0 + lq) attend to key tokens [k0, k0 + lk).
struct Segment {
  int64_t q0, lq, k0, lk;
};

void check_offsets(const std::vector<int64_t>& offsets, const char* name, int64_t total,
                   const char* tensor) {
  if (offsets.size() < 2) {
    fail(ErrorKind::value, name, concat(offsets.size(), " entries"),
         "expected batch + 1 >= 2 entries (a 0, then the running sum of sequence lengths)");
  }
  if (offsets.front() != 0) {
    fail(ErrorKind::value, concat(name, "[0]"), offsets.front(), "must be 0");
  }
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1]) {
      fail(ErrorKind::value, concat(name, "[", i, "]"), offsets[i],
           concat("must be >= ", name, "[", i - 1, "] = ", offsets[i - 1],
                  " (sequence lengths are never negative)"));
    }
  }
  if (offsets.back() != total) {
    fail(ErrorKind::value, concat(name, "[", offsets.size() - 1, "]"), offsets.back(),
         concat("must equal the ", total, " packed tokens of ", tensor));
  }
}

std::vector<Segment> segments_of(const TensorView& q, const TensorView& k, const Sequences& s,
                                 const DenseParams& params) {
  const int64_t lq = q.shape[1], lk = k.shape[1];
  std::vector<Segment> out;
  if (!s.packed()) {
    out.push_back({0, lq, 0, lk});
  } else {
    if (q.shape[0] != 1) {
      fail(ErrorKind::value, "query.shape[0]", q.shape[0],
           "variable-length attention takes the packed layout: batch must be 1");
    }
    check_offsets(s.query_offsets, "cumulative_seqlen_Q", lq, "query");
    check_offsets(s.key_offsets, "cumulative_seqlen_KV", lk, "key");
    if (s.query_offsets.size() != s.key_offsets.size()) {
      fail(ErrorKind::value, "cumulative_seqlen_KV", concat(s.key_offsets.size(), " entries"),
           concat("expected as many as cumulative_seqlen_Q (", s.query_offsets.size(), ")"));
    }
    for (size_t i = 0; i + 1 < s.query_offsets.size(); ++i) {
      out.push_back({s.query_offsets[i], s.query_offsets[i + 1] - s.query_offsets[i],
                     s.key_offsets[i], s.key_offsets[i + 1] - s.key_offsets[i]});
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const Segment& g = out[i];
    const std::string which = s.packed() ? concat("sequence ", i, ": ") : std::string();
    if (g.lq > 0 && g.lk == 0 && q.shape[0] > 0) {
      fail(ErrorKind::value, "key", concat(which, "0 key tokens for ", g.lq, " queries"),
           "every query needs at least one key (its softmax would be empty)");
    }
    if (params.is_causal && g.lq != g.lk) {
      fail(ErrorKind::value, "is_causal",
           concat("True with ", which, g.lq, " queries and ", g.lk, " keys"),
           "causal attention needs as many queries as keys (per sequence)");
    }
  }
  return out;
}

// The neighborhood problem of r queries that see every one of the segment's keys.
Params piece_params(const DenseParams& dense, int64_t r) {
  Params p;
  p.rank = 1;
  p.axis[0] = AxisParams{std::max<int64_t>(r, 1), 1, 1, dense.is_causal};
  p.scale = dense.scale;
  return p;
}

ForwardArgs forward_piece(const ForwardArgs& a, const Segment& g, int64_t start, int64_t r) {
  ForwardArgs p;
  p.query = tokens(a.query, g.q0 + start, r);
  p.output = tokens(a.output, g.q0 + start, r);
  p.lse = tokens(a.lse, g.q0 + start, r);
  p.key = tokens(a.key, g.k0, r);
  p.value = tokens(a.value, g.k0, r);
  if (g.lk > r) {
    p.extra_key = tokens(a.key, g.k0 + r, g.lk - r);
    p.extra_value = tokens(a.value, g.k0 + r, g.lk - r);
  }
  return p;
}

// Key gradients go to grad_key/grad_value at `keys`, or to host scratch.
BackwardArgs backward_piece(const BackwardArgs& a, const Segment& g, int64_t start, int64_t r,
                            const TensorView& grad_key, const TensorView& grad_value,
                            int64_t grad_k0) {
  BackwardArgs p;
  for (auto [dst, src] : {std::pair{&p.query, &a.query}, {&p.output, &a.output},
                          {&p.lse, &a.lse}, {&p.grad_output, &a.grad_output},
                          {&p.grad_lse, &a.grad_lse}, {&p.grad_query, &a.grad_query}}) {
    *dst = tokens(*src, g.q0 + start, r);
  }
  p.key = tokens(a.key, g.k0, r);
  p.value = tokens(a.value, g.k0, r);
  p.grad_key = tokens(grad_key, grad_k0, r);
  p.grad_value = tokens(grad_value, grad_k0, r);
  if (g.lk > r) {
    p.extra_key = tokens(a.key, g.k0 + r, g.lk - r);
    p.extra_value = tokens(a.value, g.k0 + r, g.lk - r);
    p.grad_extra_key = tokens(grad_key, grad_k0 + r, g.lk - r);
    p.grad_extra_value = tokens(grad_value, grad_k0 + r, g.lk - r);
  }
  return p;
}

// The pieces of a segment: query starts and sizes (one piece of 0 queries
// for a segment without queries, so its key gradients are zeroed; also for
// one without keys, which segments_of only lets through when the batch is
// empty and there is nothing to compute).
std::vector<std::pair<int64_t, int64_t>> pieces_of(const Segment& g) {
  std::vector<std::pair<int64_t, int64_t>> out;
  if (g.lq == 0 || g.lk == 0) {
    out.emplace_back(0, 0);
    return out;
  }
  for (int64_t start = 0; start < g.lq; start += g.lk) {
    out.emplace_back(start, std::min(g.lk, g.lq - start));
  }
  return out;
}

void check_dense(const TensorView& q, const TensorView& k, const TensorView& v,
                 const TensorView& o, const TensorView& lse) {
  check_rank4(q, "query");
  check_rank4(k, "key");
  check_rank4(v, "value");
  check_rank4(o, "output");
  check_tokens(v, "value", k.shape[1], "the tokens of key");
  check_tokens(o, "output", q.shape[1], "the tokens of query");
  if (lse.defined() && lse.ndim == 3 && lse.shape[1] != q.shape[1]) {
    fail(ErrorKind::value, "lse.shape[1]", lse.shape[1],
         concat("expected ", q.shape[1], " (the tokens of query)"));
  }
}

// A contiguous host buffer shaped like [B, tokens, heads, dim] of `like`.
struct HostBuffer {
  std::vector<unsigned char> bytes;
  TensorView view;
  HostBuffer(const TensorView& like, int64_t count) {
    const int64_t shape[4] = {like.shape[0], count, like.shape[2], like.shape[3]};
    bytes.resize(static_cast<size_t>(shape[0] * count * shape[2] * shape[3]) *
                 dtype_size(like.dtype));
    view = TensorView::contiguous(bytes.data(), like.dtype, 4, shape, like.device);
  }
};

// Visits every element of a 4-D view: f(element offset in t, running index).
template <typename F>
void for_each_element(const TensorView& t, F f) {
  int64_t i = 0;
  for (int64_t b = 0; b < t.shape[0]; ++b)
    for (int64_t n = 0; n < t.shape[1]; ++n)
      for (int64_t h = 0; h < t.shape[2]; ++h)
        for (int64_t d = 0; d < t.shape[3]; ++d, ++i)
          f(b * t.stride[0] + n * t.stride[1] + h * t.stride[2] + d * t.stride[3], i);
}

// Runs the backward of a segment cut into several query pieces on the
// host: each piece's key gradients land in scratch and add up in double.
std::string backward_pieces_on_host(const DenseParams& params, const BackwardArgs& a,
                                    const Segment& g, const Options& options) {
  HostBuffer dk(a.grad_key, g.lk), dv(a.grad_value, g.lk);
  std::vector<double> sum_k(static_cast<size_t>(dk.view.numel()), 0.0);
  std::vector<double> sum_v(static_cast<size_t>(dv.view.numel()), 0.0);
  std::string ran;
  for (const auto& [start, r] : pieces_of(g)) {
    ran = backward(piece_params(params, r), backward_piece(a, g, start, r, dk.view, dv.view, 0),
                   options);
    for_each_element(dk.view, [&](int64_t at, int64_t i) {
      sum_k[i] += detail::load_as_double(dk.view.data, dk.view.dtype, at);
    });
    for_each_element(dv.view, [&](int64_t at, int64_t i) {
      sum_v[i] += detail::load_as_double(dv.view.data, dv.view.dtype, at);
    });
  }
  const TensorView out_k = tokens(a.grad_key, g.k0, g.lk), out_v = tokens(a.grad_value, g.k0, g.lk);
  for_each_element(out_k, [&](int64_t at, int64_t i) {
    detail::store_from_double(out_k.data, out_k.dtype, at, sum_k[i]);
  });
  for_each_element(out_v, [&](int64_t at, int64_t i) {
    detail::store_from_double(out_v.data, out_v.dtype, at, sum_v[i]);
  });
  return ran;
}

void check_backward_tensors(const BackwardArgs& args) {
  check_dense(args.query, args.key, args.value, args.output, args.lse);
  check_rank4(args.grad_query, "grad_query");
  check_rank4(args.grad_key, "grad_key");
  check_rank4(args.grad_value, "grad_value");
  check_tokens(args.grad_key, "grad_key", args.key.shape[1], "the tokens of key");
  check_tokens(args.grad_value, "grad_value", args.key.shape[1], "the tokens of key");
  check_tokens(args.grad_output, "grad_output", args.query.shape[1], "the tokens of query");
  if (args.extra_key.defined() || args.extra_value.defined()) {
    fail(ErrorKind::value, "additional_keys", "a tensor",
         "dense attention takes its keys in key/value");
  }
}

// ---- Offsets on the GPU: every rule the host can check without reading
// them, then cuda-generic's packed kernels (the offsets' values are checked
// there). ----

bool runs_on_generic(const std::string& backend) {
  return backend.empty() || backend == "auto" || backend == "cuda-generic";
}

void check_device_call(const DenseParams& params, const TensorView& q, const TensorView& k,
                       const DeviceOffsets& d, const Options& options) {
  if (!runs_on_generic(options.backend)) {
    fail(ErrorKind::unsupported, "backend", options.backend,
         "offsets in GPU memory (DeviceOffsets) run on cuda-generic only; pass them as host "
         "lists (Sequences) for other backends");
  }
  if (q.device.type != DeviceType::cuda) {
    fail(ErrorKind::value, "cumulative_seqlen_Q", "offsets on the GPU",
         concat("device offsets need CUDA tensors; query is on ", device_name(q.device)));
  }
  if (q.shape[0] != 1) {
    fail(ErrorKind::value, "query.shape[0]", q.shape[0],
         "variable-length attention takes the packed layout: batch must be 1");
  }
  if (d.sequences < 1) {
    fail(ErrorKind::value, "cumulative_seqlen_Q", concat(d.sequences + 1, " entries"),
         "expected batch + 1 >= 2 entries (a 0, then the running sum of sequence lengths)");
  }
  for (const auto& [name, max_name, t, max] :
       {std::tuple{"query.shape[1]", "max_seqlen_Q", &q, d.query_max},
        std::tuple{"key.shape[1]", "max_seqlen_KV", &k, d.key_max}}) {
    if (t->shape[1] > INT32_MAX) {
      fail(ErrorKind::value, name, t->shape[1],
           "int32 offsets address at most 2^31 - 1 packed tokens");
    }
    if (max > t->shape[1]) {
      fail(ErrorKind::value, max_name, max,
           concat("must be at most the ", t->shape[1], " packed tokens"));
    }
  }
  // Rules that the token counts alone decide.
  if (q.shape[1] > 0 && k.shape[1] == 0) {
    fail(ErrorKind::value, "key", concat("0 key tokens for ", q.shape[1], " queries"),
         "every query needs at least one key (its softmax would be empty)");
  }
  if (params.is_causal && q.shape[1] != k.shape[1]) {
    fail(ErrorKind::value, "is_causal",
         concat("True with ", q.shape[1], " query and ", k.shape[1], " key tokens"),
         "causal attention needs as many queries as keys (per sequence)");
  }
#if GNA_WITH_CUDA
  const std::string reason = cuda_generic::cannot_read_offsets(d, q.device);
  if (!reason.empty()) fail(ErrorKind::value, "cumulative_seqlen_Q", "device offsets", reason);
#else
  fail(ErrorKind::unsupported, "backend", options.backend,
       "offsets on the GPU need cuda-generic, which is not built into this library");
#endif
}

// The options of the check-only call that vets the tensors for cuda-generic.
Options check_on_generic(const Options& options) {
  Options o = options;
  o.backend = "cuda-generic";
  o.check_only = true;
  o.tiles.reset();  // cuda-generic has no tiles
  return o;
}

// All packed tokens as one segment: its first piece has every tensor rule
// of the call (shapes, dtypes, strides, devices, heads).
Segment whole(const TensorView& q, const TensorView& k) {
  return Segment{0, q.shape[1], 0, k.shape[1]};
}

}  // namespace

std::string attention_forward(const DenseParams& params, const ForwardArgs& args,
                              const DeviceOffsets& offsets, const Options& options) {
  check_dense(args.query, args.key, args.value, args.output, args.lse);
  if (args.extra_key.defined() || args.extra_value.defined()) {
    fail(ErrorKind::value, "additional_keys", "a tensor",
         "dense attention takes its keys in key/value");
  }
  check_device_call(params, args.query, args.key, offsets, options);
  const Segment g = whole(args.query, args.key);
  const auto [start, r] = pieces_of(g).front();
  const ForwardArgs piece = forward_piece(args, g, start, r);
  const std::string ran = forward(piece_params(params, r), piece, check_on_generic(options));
  if (options.check_only || g.lq == 0) return ran;
#if GNA_WITH_CUDA
  cuda_generic::packed_forward(params, make_problem(piece_params(params, r), piece).scale(),
                               args, offsets, options);
#endif
  return ran;
}

std::string attention_backward(const DenseParams& params, const BackwardArgs& args,
                               const DeviceOffsets& offsets, const Options& options) {
  check_backward_tensors(args);
  check_device_call(params, args.query, args.key, offsets, options);
  const Segment g = whole(args.query, args.key);
  const auto [start, r] = pieces_of(g).front();
  const BackwardArgs piece = backward_piece(args, g, start, r, args.grad_key, args.grad_value, 0);
  const std::string ran = backward(piece_params(params, r), piece, check_on_generic(options));
  // Without key tokens there is nothing to write (no query token either).
  if (options.check_only || g.lk == 0) return ran;
#if GNA_WITH_CUDA
  cuda_generic::packed_backward(params, make_problem(piece_params(params, r), piece).scale(),
                                args, offsets, options);
#endif
  return ran;
}

std::string describe(const OffsetsStatus& st) {
  const std::string q = concat("cumulative_seqlen_Q[", st.index, "] = ", st.value);
  const std::string k = concat("cumulative_seqlen_KV[", st.index, "] = ", st.value);
  const std::string seq = concat("sequence ", st.index, ": ");
  switch (st.code) {
    case OffsetsStatus::ok: return "";
    case OffsetsStatus::query_start: return q + ": must be 0";
    case OffsetsStatus::key_start: return k + ": must be 0";
    case OffsetsStatus::query_decreasing:
      return concat(q, ": must be >= cumulative_seqlen_Q[", st.index - 1, "] = ", st.expected,
                    " (sequence lengths are never negative)");
    case OffsetsStatus::key_decreasing:
      return concat(k, ": must be >= cumulative_seqlen_KV[", st.index - 1, "] = ", st.expected,
                    " (sequence lengths are never negative)");
    case OffsetsStatus::query_end:
      return concat(q, ": must equal the ", st.expected, " packed tokens of query");
    case OffsetsStatus::key_end:
      return concat(k, ": must equal the ", st.expected, " packed tokens of key");
    case OffsetsStatus::no_keys:
      return concat("key = ", seq, "0 key tokens for ", st.value,
                    " queries: every query needs at least one key (its softmax would be empty)");
    case OffsetsStatus::causal_lengths:
      return concat("is_causal = True with ", seq, st.value, " queries and ", st.expected,
                    " keys: causal attention needs as many queries as keys (per sequence)");
    case OffsetsStatus::query_above_max:
      return concat("max_seqlen_Q = ", st.expected, ": ", seq, st.value,
                    " query tokens, more than max_seqlen_Q (gna's result is right; kernels "
                    "that size their grid by it would drop tokens)");
    case OffsetsStatus::key_above_max:
      return concat("max_seqlen_KV = ", st.expected, ": ", seq, st.value,
                    " key tokens, more than max_seqlen_KV (gna's result is right; kernels "
                    "that size their grid by it would drop tokens)");
  }
  return concat("unknown offsets status code ", st.code);
}

std::string attention_forward(const DenseParams& params, const ForwardArgs& args,
                              const Sequences& sequences, const Options& options) {
  check_dense(args.query, args.key, args.value, args.output, args.lse);
  if (args.extra_key.defined() || args.extra_value.defined()) {
    fail(ErrorKind::value, "additional_keys", "a tensor",
         "dense attention takes its keys in key/value");
  }
  std::string ran;
  for (const Segment& g : segments_of(args.query, args.key, sequences, params)) {
    for (const auto& [start, r] : pieces_of(g)) {
      ran = forward(piece_params(params, r), forward_piece(args, g, start, r), options);
    }
  }
  return ran;
}

std::string attention_backward(const DenseParams& params, const BackwardArgs& args,
                               const Sequences& sequences, const Options& options) {
  check_backward_tensors(args);
  std::string ran;
  for (const Segment& g : segments_of(args.query, args.key, sequences, params)) {
    const auto pieces = pieces_of(g);
    if (pieces.size() == 1) {
      const auto [start, r] = pieces.front();
      ran = backward(piece_params(params, r),
                     backward_piece(args, g, start, r, args.grad_key, args.grad_value, g.k0),
                     options);
      continue;
    }
    if (args.query.device.type != DeviceType::cpu) {
      fail(ErrorKind::unsupported, "key",
           concat(g.lq, " queries and ", g.lk, " keys on ", device_name(args.query.device)),
           "the backward of a sequence with more queries than keys runs on CPU tensors only "
           "(its key gradients add up over query pieces; gna's Python attention() splits "
           "such CUDA calls itself)");
    }
    ran = backward_pieces_on_host(params, args, g, options);
  }
  return ran;
}

}  // namespace gna
