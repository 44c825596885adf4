// Host-side conversions between float and the 16-bit formats, rounding to
// nearest even like the hardware, so host code can fill and read fp16/bf16
// tensors without a CUDA toolkit.
#pragma once

#include <cstdint>
#include <cstring>

#include "gna/tensor.hpp"

namespace gna::detail {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_f16(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (abs < 0x38800000u) {
    // Subnormal or zero in half: scale so that rounding happens at 2^-24.
    const float scaled = bits_float(abs) * 16777216.0f;  // * 2^24, exact
    const uint32_t r = static_cast<uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(r);
    uint32_t m = r;
    if (rest > 0.5f || (rest == 0.5f && (r & 1u))) ++m;
    return static_cast<uint16_t>(sign | m);
  }
  // Normal: rebias exponent from 127 to 15, round mantissa from 23 to 10 bits.
  uint32_t v = abs - 0x38000000u;
  v += 0xfffu + ((v >> 13) & 1u);
  return static_cast<uint16_t>(sign | (v >> 13));
}

inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {
    const float v = static_cast<float>(man) * (1.0f / 16777216.0f);  // man * 2^-24
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

// Reads element `offset` (in elements) of a buffer of the given dtype.
inline double load_as_double(const void* base, DType dtype, int64_t offset) {
  switch (dtype) {
    case DType::f32: return static_cast<const float*>(base)[offset];
    case DType::f64: return static_cast<const double*>(base)[offset];
    case DType::f16: return f16_to_float(static_cast<const uint16_t*>(base)[offset]);
    case DType::bf16: return bf16_to_float(static_cast<const uint16_t*>(base)[offset]);
  }
  return 0.0;
}

// Writes a double to element `offset`, rounded to the dtype (through float
// for the 16-bit formats).
inline void store_from_double(void* base, DType dtype, int64_t offset, double value) {
  switch (dtype) {
    case DType::f32: static_cast<float*>(base)[offset] = static_cast<float>(value); break;
    case DType::f64: static_cast<double*>(base)[offset] = value; break;
    case DType::f16:
      static_cast<uint16_t*>(base)[offset] = float_to_f16(static_cast<float>(value));
      break;
    case DType::bf16:
      static_cast<uint16_t*>(base)[offset] = float_to_bf16(static_cast<float>(value));
      break;
  }
}

}  // namespace gna::detail
