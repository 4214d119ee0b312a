// Helpers of the CPU kernels: attributes, checks, conversion, broadcasts.
#ifndef WEFT_RUNTIME_BACKENDS_CPU_CPUSUPPORT_H
#define WEFT_RUNTIME_BACKENDS_CPU_CPUSUPPORT_H

#include "runtime/backends/cpu/CpuKernels.h"
#include "runtime/steps/ElementValues.h"
#include "runtime/steps/StepChecks.h"
#include "runtime/steps/StepSupport.h"

#include <functional>
#include <utility>
#include <vector>

namespace weft::runtime::cpu {

// The step library's helpers, under the names the kernels use.
using steps::AttentionShape;
using steps::attentionShape;
using steps::BatchMap;
using steps::broadcastsTo;
using steps::broadcastStrides;
using steps::contiguousStrides;
using steps::convertElements;
using steps::doubleToInt;
using steps::doubleToU64Bits;
using steps::expectArity;
using steps::expectFloat;
using steps::expectIndex;
using steps::expectSameDType;
using steps::expectShape;
using steps::fromFloat;
using steps::gatherAxis;
using steps::GatherNdShape;
using steps::gatherNdShape;
using steps::GemmShape;
using steps::gemmShape;
using steps::intToDouble;
using steps::loadDouble;
using steps::loadInt;
using steps::normalizeAxis;
using steps::product;
using steps::ReduceKind;
using steps::ReducePlan;
using steps::reducePlan;
using steps::roundToFloat;
using steps::SliceSpec;
using steps::sliceSpec;
using steps::storeDouble;
using steps::storeInt;
using steps::toFloat;
using steps::wrapInt;

//===----------------------------------------------------------------------===//
// Parallel loops
//===----------------------------------------------------------------------===//

/// fn(begin, end) over [0, n) on the pool (serially when it is null).
void parallelFor(const StepArgs &args, int64_t n, int64_t grain,
                 const ThreadPool::RangeFn &fn);

/// Makes BLAS single-threaded (once): kernels parallelize around its calls.
void useSingleThreadedBlas();

/// C = alpha * op(A) @ op(B) + beta * C on row-major matrices (cblas_sgemm's
/// contract): op(A) is m x k, op(B) k x n, C m x n. OpenBLAS when linked;
/// a build with WEFT_CPU_BLAS=none (the self-contained GPU-machine binary,
/// whose CPU backend only serves checks) uses a blocked loop instead. Every dim
/// and leading dimension must fit in an int (checked by the callers).
void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           float alpha, const float *a, int64_t lda, const float *b,
           int64_t ldb, float beta, float *c, int64_t ldc);

//===----------------------------------------------------------------------===//
// Element conversion
//===----------------------------------------------------------------------===//

/// The tanh-approximated GELU (the GELU_TANH kernel and the GEMM epilogue).
double geluTanh(double x);

/// A float tensor's elements as float32: borrowed when already f32 and
/// aligned, else converted.
class FloatInput {
public:
  explicit FloatInput(const InTensor &t);
  const float *data() const { return ptr; }

private:
  std::vector<float> owned;
  const float *ptr;
};

/// float32 storage for an output: the output itself when f32 and aligned,
/// else a staging buffer that commit() converts into it.
class FloatOutput {
public:
  explicit FloatOutput(const OutTensor &t);
  float *data() { return ptr; }
  void commit();

private:
  const OutTensor &out;
  std::vector<float> staged;
  float *ptr;
};

//===----------------------------------------------------------------------===//
// Broadcasting and strided copies
//===----------------------------------------------------------------------===//

/// Walks the positions of a shape in row-major order, keeping one linear
/// offset per stride vector (each of the shape's rank).
class StridedWalker {
public:
  StridedWalker(Shape shape, std::vector<Shape> strides);
  /// Moves to the position with row-major index `linear`.
  void seek(int64_t linear);
  void next();
  int64_t offset(size_t k) const { return offsets[k]; }

private:
  Shape shape, index;
  std::vector<Shape> strides;
  std::vector<int64_t> offsets;
};

/// Copies the elements of an `outShape` tensor, element i of which is at
/// src + (srcOffset + sum(index[d] * srcStrides[d])) * elemSize.
void stridedCopy(const std::byte *src, int64_t srcOffset,
                 const Shape &srcStrides, const Shape &outShape,
                 size_t elemSize, std::byte *dst);

/// y[i] = op(y[i], v[broadcast i]) where `vShape` broadcasts to `shape`.
void applyBroadcast(float *y, const Shape &shape, const float *v,
                    const Shape &vShape, float (*op)(float, float));

//===----------------------------------------------------------------------===//
// Kernels (one run per step kind; the checks are the step library's)
//===----------------------------------------------------------------------===//

#define WEFT_CPU_KERNEL(NAME) Status run##NAME(const StepArgs &args);
WEFT_CPU_KERNEL(Elementwise)
WEFT_CPU_KERNEL(Swiglu)
WEFT_CPU_KERNEL(Gemm)
WEFT_CPU_KERNEL(Attention)
WEFT_CPU_KERNEL(LayerNorm)
WEFT_CPU_KERNEL(RmsNorm)
WEFT_CPU_KERNEL(Softmax)
WEFT_CPU_KERNEL(Rotary)
WEFT_CPU_KERNEL(Reduce)
WEFT_CPU_KERNEL(Cumsum)
WEFT_CPU_KERNEL(Copy)
WEFT_CPU_KERNEL(Transpose)
WEFT_CPU_KERNEL(Slice)
WEFT_CPU_KERNEL(Concat)
WEFT_CPU_KERNEL(Tile)
WEFT_CPU_KERNEL(Broadcast)
WEFT_CPU_KERNEL(Trilu)
WEFT_CPU_KERNEL(Embedding)
WEFT_CPU_KERNEL(Gather)
WEFT_CPU_KERNEL(GatherNd)
WEFT_CPU_KERNEL(GatherElements)
WEFT_CPU_KERNEL(Collective)
WEFT_CPU_KERNEL(Send)
WEFT_CPU_KERNEL(Recv)
WEFT_CPU_KERNEL(PagedAttention)
WEFT_CPU_KERNEL(Sample)
#undef WEFT_CPU_KERNEL

} // namespace weft::runtime::cpu

#endif // WEFT_RUNTIME_BACKENDS_CPU_CPUSUPPORT_H
