// Helpers of the CPU kernels: attributes, checks, conversion, broadcasts.
#ifndef WEFT_RUNTIME_BACKENDS_CPU_CPUSUPPORT_H
#define WEFT_RUNTIME_BACKENDS_CPU_CPUSUPPORT_H

#include "runtime/backends/cpu/CpuKernels.h"

#include <functional>
#include <utility>
#include <vector>

namespace weft::runtime::cpu {

//===----------------------------------------------------------------------===//
// Attributes and checks
//===----------------------------------------------------------------------===//

/// A required integer attribute (Step.ints).
Result<int64_t> intAttr(const artifact::Step &step, const char *key);
/// An optional integer attribute, `fallback` when absent.
int64_t intAttrOr(const artifact::Step &step, const char *key,
                  int64_t fallback);
/// A boolean attribute (Step.ints, 0 or 1), false when absent.
Result<bool> boolAttr(const artifact::Step &step, const char *key);
/// A required float attribute (Step.floats).
Result<double> floatAttr(const artifact::Step &step, const char *key);
/// A required list attribute (Step.lists).
Result<Shape> listAttr(const artifact::Step &step, const char *key);

/// Refuses other numbers of inputs and outputs.
Status expectArity(const StepArgs &args, size_t inputs, size_t outputs);
/// Refuses an output whose shape is not `expected`.
Status expectShape(const OutTensor &out, const Shape &expected,
                   const char *what = "output");
/// Refuses a tensor whose dtype is not a float type.
Status expectFloat(DType dtype, const char *what);
/// Refuses a tensor whose dtype is not an integer type (BOOL excluded).
Status expectIndex(DType dtype, const char *what);
/// Refuses differing dtypes.
Status expectSameDType(DType a, DType b, const char *what);
/// `axis` in [-rank, rank) made non-negative.
Result<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Product of dims [begin, end).
int64_t product(const Shape &shape, size_t begin, size_t end);
/// Row-major element strides.
Shape contiguousStrides(const Shape &shape);

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

/// Element i of a tensor of `dtype` at `base`, as double or int64.
double loadDouble(DType dtype, const std::byte *base, int64_t i);
int64_t loadInt(DType dtype, const std::byte *base, int64_t i);
/// Stores v into element i: floats rounded to nearest even, integers
/// truncated (NaN to 0, saturated) and wrapped to the width, BOOL as v != 0.
void storeDouble(DType dtype, std::byte *base, int64_t i, double v);
void storeInt(DType dtype, std::byte *base, int64_t i, int64_t v);
/// The integer a double converts to: truncated, NaN 0, saturated.
int64_t doubleToInt(double v);
/// v wrapped to an integer dtype's width (BOOL: v != 0).
int64_t wrapInt(DType dtype, int64_t v);
/// v rounded to a float dtype's precision.
double roundToFloat(DType dtype, double v);

/// The tanh-approximated GELU (the GELU_TANH kernel and the GEMM epilogue).
double geluTanh(double x);

/// n elements of a float tensor to float32 and back.
void toFloat(DType dtype, const std::byte *src, float *dst, int64_t n);
void fromFloat(const float *src, DType dtype, std::byte *dst, int64_t n);

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

/// Whether `in` broadcasts (numpy, right-aligned) to `out`.
bool broadcastsTo(const Shape &in, const Shape &out);
/// Element strides of `in` seen with `out`'s rank: 0 on broadcast dims.
Shape broadcastStrides(const Shape &in, const Shape &out);

/// The shapes of one GEMM step: out = op(a) @ op(b) (+ bias); batch dims
/// broadcast (numpy rules), a 1-D `a` is a row vector.
struct GemmShape {
  bool transA = false, transB = false, vectorA = false;
  int64_t m = 0, n = 0, k = 0;
  Shape batchA, batchB, batch, out;
};

/// The shapes of GEMM step `args` (its attributes and operand shapes).
Result<GemmShape> gemmShape(const StepArgs &args);

/// Linear batch index -> offsets of a's and b's matrices (in matrices).
struct BatchMap {
  explicit BatchMap(const GemmShape &g)
      : batch(g.batch), stridesA(broadcastStrides(g.batchA, g.batch)),
        stridesB(broadcastStrides(g.batchB, g.batch)) {}
  std::pair<int64_t, int64_t> operator()(int64_t linear) const {
    int64_t oa = 0, ob = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      int64_t i = linear % batch[d];
      linear /= batch[d];
      oa += i * stridesA[d];
      ob += i * stridesB[d];
    }
    return {oa, ob};
  }
  Shape batch, stridesA, stridesB;
};

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
// Kernels (one check and one run per step kind)
//===----------------------------------------------------------------------===//

#define WEFT_CPU_KERNEL(NAME)                                                  \
  Status check##NAME(const StepArgs &args);                                    \
  Status run##NAME(const StepArgs &args);
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
#undef WEFT_CPU_KERNEL

} // namespace weft::runtime::cpu

#endif // WEFT_RUNTIME_BACKENDS_CPU_CPUSUPPORT_H
