// What a host C++ compiler needs to compile kernel modules emitted for
// KernelDialect::Host: CUDA's qualifiers as nothing, the thread and block
// indices as globals a test sets before each call, and __half /
// __nv_bfloat16 with the runtime's round-to-nearest-even conversions. A
// launch is emulated by calling the kernel once per (block, thread).
#ifndef WEFT_COMPILER_CODEGEN_CUDAHOSTSHIM_H
#define WEFT_COMPILER_CODEGEN_CUDAHOSTSHIM_H

#include "runtime/support/Float16.h"

#include <cstdint>
#include <math.h>

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict

struct WfDim3 {
  unsigned int x = 0, y = 0, z = 0;
};
inline WfDim3 blockIdx, blockDim, threadIdx, gridDim;

struct __half {
  uint16_t bits;
};
struct __nv_bfloat16 {
  uint16_t bits;
};

inline float __half2float(__half h) {
  return weft::runtime::halfToFloat(h.bits);
}
inline __half __float2half_rn(float f) {
  return {weft::runtime::floatToHalf(f)};
}
inline float __bfloat162float(__nv_bfloat16 h) {
  return weft::runtime::bf16ToFloat(h.bits);
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  return {weft::runtime::floatToBf16(f)};
}

#endif // WEFT_COMPILER_CODEGEN_CUDAHOSTSHIM_H
