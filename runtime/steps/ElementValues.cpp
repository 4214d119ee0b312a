// Element semantics of every dtype: loads, stores, float32 conversions and
// the sums collectives compute (shared by backends and transports).
#include "runtime/steps/ElementValues.h"

#include "runtime/support/Float16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace weft::runtime::steps {

namespace {

template <typename T> T loadAs(const std::byte *base, int64_t i) {
  T v;
  std::memcpy(&v, base + i * sizeof(T), sizeof(T));
  return v;
}

template <typename T> void storeAs(std::byte *base, int64_t i, T v) {
  std::memcpy(base + i * sizeof(T), &v, sizeof(T));
}

} // namespace

double loadDouble(DType dtype, const std::byte *base, int64_t i) {
  switch (dtype) {
  case DType::F32:
    return loadAs<float>(base, i);
  case DType::F16:
    return halfToFloat(loadAs<uint16_t>(base, i));
  case DType::BF16:
    return bf16ToFloat(loadAs<uint16_t>(base, i));
  case DType::F64:
    return loadAs<double>(base, i);
  default: // u64 held as its bits: intToDouble reads them unsigned
    return intToDouble(dtype, loadInt(dtype, base, i));
  }
}

int64_t loadInt(DType dtype, const std::byte *base, int64_t i) {
  switch (dtype) {
  case DType::I64:
    return loadAs<int64_t>(base, i);
  case DType::I32:
    return loadAs<int32_t>(base, i);
  case DType::I16:
    return loadAs<int16_t>(base, i);
  case DType::I8:
    return loadAs<int8_t>(base, i);
  case DType::U8:
    return loadAs<uint8_t>(base, i);
  case DType::U16:
    return loadAs<uint16_t>(base, i);
  case DType::U32:
    return loadAs<uint32_t>(base, i);
  case DType::U64: // the same 64 bits: +, -, * wrap alike
    return static_cast<int64_t>(loadAs<uint64_t>(base, i));
  case DType::BOOL:
    return loadAs<uint8_t>(base, i) != 0;
  default:
    return isFloatDType(dtype) ? doubleToInt(loadDouble(dtype, base, i)) : 0;
  }
}

int64_t doubleToInt(double v) {
  if (std::isnan(v))
    return 0;
  if (v >= 9223372036854775807.0)
    return std::numeric_limits<int64_t>::max();
  if (v <= -9223372036854775808.0)
    return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

int64_t doubleToU64Bits(double v) {
  if (std::isnan(v) || v < 0)
    return doubleToInt(v);
  if (v >= 18446744073709551616.0)
    return -1; // all ones: the largest u64
  return static_cast<int64_t>(static_cast<uint64_t>(v));
}

double intToDouble(DType dtype, int64_t v) {
  return dtype == DType::U64 ? static_cast<double>(static_cast<uint64_t>(v))
                             : static_cast<double>(v);
}

int64_t wrapInt(DType dtype, int64_t v) {
  switch (dtype) {
  case DType::I32:
    return static_cast<int32_t>(static_cast<uint32_t>(v));
  case DType::I16:
    return static_cast<int16_t>(static_cast<uint16_t>(v));
  case DType::I8:
    return static_cast<int8_t>(static_cast<uint8_t>(v));
  case DType::U8:
    return static_cast<uint8_t>(v);
  case DType::U16:
    return static_cast<uint16_t>(v);
  case DType::U32:
    return static_cast<uint32_t>(v);
  case DType::BOOL:
    return v != 0;
  default:
    return v;
  }
}

double roundToFloat(DType dtype, double v) {
  switch (dtype) {
  case DType::F32:
    return static_cast<float>(v);
  case DType::F16:
    return halfToFloat(floatToHalf(static_cast<float>(v)));
  case DType::BF16:
    return bf16ToFloat(floatToBf16(static_cast<float>(v)));
  default:
    return v;
  }
}

void storeDouble(DType dtype, std::byte *base, int64_t i, double v) {
  switch (dtype) {
  case DType::F32:
    return storeAs<float>(base, i, static_cast<float>(v));
  case DType::F16:
    return storeAs<uint16_t>(base, i, floatToHalf(static_cast<float>(v)));
  case DType::BF16:
    return storeAs<uint16_t>(base, i, floatToBf16(static_cast<float>(v)));
  case DType::F64:
    return storeAs<double>(base, i, v);
  case DType::BOOL:
    return storeAs<uint8_t>(base, i, v != 0);
  case DType::U64:
    return storeInt(dtype, base, i, doubleToU64Bits(v));
  default:
    return storeInt(dtype, base, i, doubleToInt(v));
  }
}

void storeInt(DType dtype, std::byte *base, int64_t i, int64_t v) {
  switch (dtype) {
  case DType::I64:
    return storeAs<int64_t>(base, i, v);
  case DType::I32:
    return storeAs<int32_t>(base, i, static_cast<int32_t>(wrapInt(dtype, v)));
  case DType::I16:
    return storeAs<int16_t>(base, i, static_cast<int16_t>(wrapInt(dtype, v)));
  case DType::I8:
    return storeAs<int8_t>(base, i, static_cast<int8_t>(wrapInt(dtype, v)));
  case DType::U8:
    return storeAs<uint8_t>(base, i, static_cast<uint8_t>(wrapInt(dtype, v)));
  case DType::U16:
    return storeAs<uint16_t>(base, i, static_cast<uint16_t>(v));
  case DType::U32:
    return storeAs<uint32_t>(base, i, static_cast<uint32_t>(v));
  case DType::U64:
    return storeAs<uint64_t>(base, i, static_cast<uint64_t>(v));
  case DType::BOOL:
    return storeAs<uint8_t>(base, i, v != 0);
  default:
    if (isFloatDType(dtype))
      storeDouble(dtype, base, i, intToDouble(dtype, v));
    return;
  }
}

void toFloat(DType dtype, const std::byte *src, float *dst, int64_t n) {
  switch (dtype) {
  case DType::F32:
    std::memcpy(dst, src, n * sizeof(float));
    return;
  case DType::F16:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = halfToFloat(loadAs<uint16_t>(src, i));
    return;
  case DType::BF16:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = bf16ToFloat(loadAs<uint16_t>(src, i));
    return;
  default:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = static_cast<float>(loadDouble(dtype, src, i));
  }
}

void fromFloat(const float *src, DType dtype, std::byte *dst, int64_t n) {
  switch (dtype) {
  case DType::F32:
    std::memcpy(dst, src, n * sizeof(float));
    return;
  case DType::F16:
    for (int64_t i = 0; i < n; ++i)
      storeAs<uint16_t>(dst, i, floatToHalf(src[i]));
    return;
  case DType::BF16:
    for (int64_t i = 0; i < n; ++i)
      storeAs<uint16_t>(dst, i, floatToBf16(src[i]));
    return;
  default:
    for (int64_t i = 0; i < n; ++i)
      storeDouble(dtype, dst, i, src[i]);
  }
}

void convertElements(DType from, const std::byte *src, DType to, std::byte *dst,
                     int64_t n) {
  if (from == to) {
    std::memcpy(dst, src, n * dtypeSize(from));
    return;
  }
  if (from == DType::F64 || to == DType::F64) {
    for (int64_t i = 0; i < n; ++i)
      storeDouble(to, dst, i, loadDouble(from, src, i));
    return;
  }
  constexpr int64_t kChunk = 4096;
  float tmp[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    int64_t m = std::min(kChunk, n - i);
    toFloat(from, src + i * dtypeSize(from), tmp, m);
    fromFloat(tmp, to, dst + i * dtypeSize(to), m);
  }
}

namespace {

template <typename T>
void sumAs(std::span<const std::byte *const> parts, std::byte *out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T acc;
    std::memcpy(&acc, parts[0] + i * sizeof(T), sizeof(T));
    for (size_t p = 1; p < parts.size(); ++p) {
      T v;
      std::memcpy(&v, parts[p] + i * sizeof(T), sizeof(T));
      acc += v;
    }
    std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
  }
}

/// f16 / bf16: summed in f32, rounded once.
template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
void sumHalf(std::span<const std::byte *const> parts, std::byte *out,
             int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, parts[0] + 2 * i, 2);
    float acc = Load(h);
    for (size_t p = 1; p < parts.size(); ++p) {
      std::memcpy(&h, parts[p] + 2 * i, 2);
      acc += Load(h);
    }
    h = Store(acc);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

} // namespace

void sumElements(DType dtype, std::span<const std::byte *const> parts,
                 std::byte *out, int64_t n) {
  if (parts.empty() || n <= 0)
    return;
  switch (dtype) {
  case DType::F32:
    return sumAs<float>(parts, out, n);
  case DType::F64:
    return sumAs<double>(parts, out, n);
  case DType::F16:
    return sumHalf<halfToFloat, floatToHalf>(parts, out, n);
  case DType::BF16:
    return sumHalf<bf16ToFloat, floatToBf16>(parts, out, n);
  case DType::BOOL:
    for (int64_t i = 0; i < n; ++i) {
      bool any = false;
      for (const std::byte *p : parts)
        any |= p[i] != std::byte{0};
      out[i] = std::byte{any};
    }
    return;
  default:
    // Integers: summed modulo 2^64, then wrapped to the width.
    for (int64_t i = 0; i < n; ++i) {
      uint64_t acc = 0;
      for (const std::byte *p : parts)
        acc += static_cast<uint64_t>(loadInt(dtype, p, i));
      storeInt(dtype, out, i, static_cast<int64_t>(acc));
    }
  }
}

} // namespace weft::runtime::steps
