// Views of tensors in memory: dtype, shape and a pointer to row-major bytes.
#ifndef WEFT_RUNTIME_STEPS_TENSOR_H
#define WEFT_RUNTIME_STEPS_TENSOR_H

#include "runtime/artifact/DType.h"

#include <cstddef>

namespace weft::runtime {

/// A row-major tensor at `data` (borrowed).
template <typename Ptr> struct TensorView {
  DType dtype = DType::DTYPE_UNSPECIFIED;
  Shape shape;
  Ptr data = nullptr;

  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t numElements() const { return runtime::numElements(shape); }
  size_t elementSize() const { return dtypeSize(dtype); }
  uint64_t bytes() const { return numElements() * elementSize(); }
};

using InTensor = TensorView<const std::byte *>;
using OutTensor = TensorView<std::byte *>;

} // namespace weft::runtime

#endif // WEFT_RUNTIME_STEPS_TENSOR_H
