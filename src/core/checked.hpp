// Overflow-checked size arithmetic. Every count derived from user sizes
// (tokens, elements, bytes, tile products, work figures) by the problem
// builder, the simulator, the CLI and the harness goes through these, so a
// count past 2^62 is a named gna::Error before anything is allocated or
// divided, never a wrapped int64 (a negative size, a zero divisor).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/check.hpp"

namespace gna::detail {

// The largest count anything may reach: leaves headroom for a sum of two.
constexpr int64_t kMaxCount = int64_t{1} << 62;

// The names are views: every call site checks on every call and fails
// rarely, so a literal costs no std::string until a message is written.

// a * b for counts (a, b >= 0); `what` names the quantity for the message.
inline int64_t checked_mul(int64_t a, int64_t b, std::string_view argument,
                           std::string_view what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) || r > kMaxCount) {
    throw Error(ErrorKind::value, std::string(argument),
                concat(argument, ": ", what, " = ", a, " * ", b,
                       " exceeds 2^62, more than 64-bit sizes can count"));
  }
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, std::string_view argument,
                           std::string_view what) {
  int64_t r = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r) || r > kMaxCount) {
    throw Error(ErrorKind::value, std::string(argument),
                concat(argument, ": ", what, " = ", a, " + ", b,
                       " exceeds 2^62, more than 64-bit sizes can count"));
  }
  return r;
}

// The product of several counts, all named in the message when it is too
// large: "what = 4 * 3037000500 * 3037000500 exceeds 2^62 ...".
inline int64_t checked_product(std::initializer_list<int64_t> factors,
                               std::string_view argument, std::string_view what) {
  int64_t r = 1;
  bool overflow = false;
  for (int64_t f : factors) {
    if (f == 0) return 0;
    overflow = overflow || f < 0 || __builtin_mul_overflow(r, f, &r) || r > kMaxCount;
  }
  if (!overflow) return r;
  std::string terms;
  for (int64_t f : factors) terms += concat(terms.empty() ? "" : " * ", f);
  throw Error(ErrorKind::value, std::string(argument),
              concat(argument, ": ", what, " = ", terms,
                     " exceeds 2^62, more than 64-bit sizes can count"));
}

// offset + (extent - 1) * stride, the offset of a tensor's last element
// along one more dimension (all >= 0), as checked_add(offset,
// checked_mul(...)) would give it; `argument()` names the stride, built
// only for the error (a hot path checks every dimension of every tensor).
template <typename Argument>
int64_t checked_offset(int64_t offset, int64_t extent, int64_t stride, const Argument& argument,
                       std::string_view what) {
  int64_t step = 0, sum = 0;
  if (offset < 0 || extent < 1 || stride < 0 ||
      __builtin_mul_overflow(extent - 1, stride, &step) || step > kMaxCount ||
      __builtin_add_overflow(offset, step, &sum) || sum > kMaxCount) {
    const std::string name = argument();
    return checked_add(offset, checked_mul(extent - 1, stride, name, what), name, what);
  }
  return sum;
}

}  // namespace gna::detail
