// Element loads, stores and float32 conversions for every dtype.
#include "runtime/backends/cpu/CpuSupport.h"

#include "runtime/support/Float16.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace weft::runtime::cpu {

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
  default:
    return static_cast<double>(loadInt(dtype, base, i));
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
  case DType::BOOL:
    return storeAs<uint8_t>(base, i, v != 0);
  default:
    if (isFloatDType(dtype))
      storeDouble(dtype, base, i, static_cast<double>(v));
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

static bool floatAligned(const void *p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(float) == 0;
}

FloatInput::FloatInput(const InTensor &t) {
  if (t.dtype == DType::F32 && floatAligned(t.data)) {
    ptr = reinterpret_cast<const float *>(t.data);
    return;
  }
  owned.resize(t.numElements());
  toFloat(t.dtype, t.data, owned.data(), t.numElements());
  ptr = owned.data();
}

FloatOutput::FloatOutput(const OutTensor &t) : out(t) {
  if (t.dtype == DType::F32 && floatAligned(t.data)) {
    ptr = reinterpret_cast<float *>(t.data);
    return;
  }
  staged.resize(t.numElements());
  ptr = staged.data();
}

void FloatOutput::commit() {
  if (!staged.empty())
    fromFloat(staged.data(), out.dtype, out.data, out.numElements());
}

} // namespace weft::runtime::cpu
