// Element types of the artifact format: sizes, names and shape arithmetic.
#include "runtime/artifact/DType.h"

namespace weft::runtime {

using artifact::DType;

size_t dtypeSize(int dtype) {
  switch (dtype) {
  case DType::F64:
  case DType::I64:
  case DType::U64:
    return 8;
  case DType::F32:
  case DType::I32:
  case DType::U32:
    return 4;
  case DType::F16:
  case DType::BF16:
  case DType::I16:
  case DType::U16:
    return 2;
  case DType::I8:
  case DType::U8:
  case DType::BOOL:
    return 1;
  default:
    return 0;
  }
}

std::string dtypeName(int dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::F64:
    return "f64";
  case DType::I64:
    return "i64";
  case DType::I32:
    return "i32";
  case DType::I16:
    return "i16";
  case DType::I8:
    return "i8";
  case DType::U8:
    return "u8";
  case DType::U16:
    return "u16";
  case DType::U32:
    return "u32";
  case DType::U64:
    return "u64";
  case DType::BOOL:
    return "bool";
  case DType::DTYPE_UNSPECIFIED:
    return "unspecified";
  default:
    return "dtype(" + std::to_string(dtype) + ")";
  }
}

bool isFloatDType(int dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 ||
         dtype == DType::F64;
}

bool isIntegerDType(int dtype) {
  return dtype == DType::I64 || dtype == DType::I32 || dtype == DType::I16 ||
         dtype == DType::I8 || dtype == DType::U8 || dtype == DType::U16 ||
         dtype == DType::U32 || dtype == DType::U64 || dtype == DType::BOOL;
}

std::string shapeString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t numElements(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Result<uint64_t> checkedBytes(std::span<const int64_t> shape, int dtype) {
  size_t size = dtypeSize(dtype);
  if (size == 0)
    return errorStatus("unsupported dtype " + dtypeName(dtype));
  uint64_t bytes = size;
  for (int64_t d : shape) {
    if (d < 0)
      return errorStatus("negative dim in shape " + shapeString(shape));
    if (d != 0 && bytes > static_cast<uint64_t>(INT64_MAX / d))
      return errorStatus("shape " + shapeString(shape) +
                         " overflows 64-bit sizes");
    bytes *= static_cast<uint64_t>(d);
  }
  return bytes;
}

} // namespace weft::runtime
