// float32 staging of the CPU kernels' operands.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cstdint>

namespace weft::runtime::cpu {

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
