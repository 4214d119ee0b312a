// Element semantics of every dtype: loads, stores, rounding, float32
// conversion and sums, as every backend and transport computes them.
#ifndef WEFT_RUNTIME_STEPS_ELEMENTVALUES_H
#define WEFT_RUNTIME_STEPS_ELEMENTVALUES_H

#include "runtime/artifact/DType.h"

#include <cstddef>
#include <cstdint>
#include <span>

namespace weft::runtime::steps {

/// Element i of a tensor of `dtype` at `base`, as double or int64.
double loadDouble(DType dtype, const std::byte *base, int64_t i);
int64_t loadInt(DType dtype, const std::byte *base, int64_t i);
/// Stores v into element i: floats rounded to nearest even, integers
/// truncated (NaN to 0, saturated) and wrapped to the width, BOOL as v != 0.
void storeDouble(DType dtype, std::byte *base, int64_t i, double v);
void storeInt(DType dtype, std::byte *base, int64_t i, int64_t v);
/// The integer a double converts to: truncated, NaN 0, saturated.
int64_t doubleToInt(double v);
/// The bits of the u64 a non-negative double converts to (truncated,
/// saturated at 2^64 - 1); negative values and NaN as doubleToInt.
int64_t doubleToU64Bits(double v);
/// An integer value held in int64 as a double: U64 holds its bits.
double intToDouble(DType dtype, int64_t v);
/// v wrapped to an integer dtype's width (BOOL: v != 0).
int64_t wrapInt(DType dtype, int64_t v);
/// v rounded to a float dtype's precision.
double roundToFloat(DType dtype, double v);

/// n elements of a float tensor to float32 and back.
void toFloat(DType dtype, const std::byte *src, float *dst, int64_t n);
void fromFloat(const float *src, DType dtype, std::byte *dst, int64_t n);

/// Converts n elements between float dtypes (or copies within one dtype),
/// rounding to nearest even.
void convertElements(DType from, const std::byte *src, DType to, std::byte *dst,
                     int64_t n);

/// out[i] = parts[0][i] + parts[1][i] + ..., added in that order: f32 and
/// f64 in their own type, f16 and bf16 in f32 and rounded once, integers
/// wrapped to their width, BOOL as a logical or. `out` may be one of the
/// parts. What an all-reduce sum computes, on any backend or transport.
void sumElements(DType dtype, std::span<const std::byte *const> parts,
                 std::byte *out, int64_t n);

} // namespace weft::runtime::steps

#endif // WEFT_RUNTIME_STEPS_ELEMENTVALUES_H
