// Element types of the artifact format: sizes, names and shape arithmetic.
#ifndef WEFT_RUNTIME_ARTIFACT_DTYPE_H
#define WEFT_RUNTIME_ARTIFACT_DTYPE_H

#include "runtime/artifact/artifact.pb.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace weft::runtime {

using DType = weft::artifact::DType;
using Shape = std::vector<int64_t>;

/// Bytes per element; 0 for DTYPE_UNSPECIFIED and unknown values.
size_t dtypeSize(int dtype);
/// A short name: "f32", "bf16", "i64", "bool"; "unspecified" or "dtype(N)".
std::string dtypeName(int dtype);
bool isFloatDType(int dtype);
/// Integer types and BOOL (held as 0/1).
bool isIntegerDType(int dtype);

/// "[2, 3]".
std::string shapeString(std::span<const int64_t> shape);
/// Copies a repeated int64 protobuf field into a Shape.
template <typename Field> Shape toShape(const Field &field) {
  return Shape(field.begin(), field.end());
}
/// Product of dims; the caller has checked the shape (see checkedBytes).
int64_t numElements(std::span<const int64_t> shape);
/// Byte size of a tensor, refusing negative dims, unknown dtypes and
/// overflow of 64 bits.
Result<uint64_t> checkedBytes(std::span<const int64_t> shape, int dtype);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_DTYPE_H
