// Helpers of the CPU kernels: attributes, checks, broadcasts, copies.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cstring>

namespace weft::runtime::cpu {

void parallelFor(const StepArgs &args, int64_t n, int64_t grain,
                 const ThreadPool::RangeFn &fn) {
  if (args.pool)
    args.pool->parallelFor(n, grain, fn);
  else if (n > 0)
    fn(0, n);
}

StridedWalker::StridedWalker(Shape shape, std::vector<Shape> strides)
    : shape(std::move(shape)), index(this->shape.size(), 0),
      strides(std::move(strides)), offsets(this->strides.size(), 0) {}

void StridedWalker::seek(int64_t linear) {
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] ? linear % shape[d] : 0;
    linear = shape[d] ? linear / shape[d] : 0;
  }
  for (size_t k = 0; k < strides.size(); ++k) {
    offsets[k] = 0;
    for (size_t d = 0; d < shape.size(); ++d)
      offsets[k] += index[d] * strides[k][d];
  }
}

void StridedWalker::next() {
  for (size_t d = shape.size(); d-- > 0;) {
    if (++index[d] < shape[d]) {
      for (size_t k = 0; k < strides.size(); ++k)
        offsets[k] += strides[k][d];
      return;
    }
    index[d] = 0;
    for (size_t k = 0; k < strides.size(); ++k)
      offsets[k] -= (shape[d] - 1) * strides[k][d];
  }
}

//===----------------------------------------------------------------------===//
// Strided copies
//===----------------------------------------------------------------------===//

namespace {

template <typename T>
void copyRun(const std::byte *src, int64_t stride, int64_t n, std::byte *dst) {
  const T *s = reinterpret_cast<const T *>(src);
  T *d = reinterpret_cast<T *>(dst);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(d + i, s + i * stride, sizeof(T));
}

/// n elements, `stride` elements apart in src, packed into dst.
void copyStridedRun(const std::byte *src, int64_t stride, int64_t n,
                    size_t elemSize, std::byte *dst) {
  if (stride == 1) {
    std::memcpy(dst, src, n * elemSize);
    return;
  }
  switch (elemSize) {
  case 1:
    return copyRun<uint8_t>(src, stride, n, dst);
  case 2:
    return copyRun<uint16_t>(src, stride, n, dst);
  case 4:
    return copyRun<uint32_t>(src, stride, n, dst);
  case 8:
    return copyRun<uint64_t>(src, stride, n, dst);
  default:
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(dst + i * elemSize, src + i * stride * elemSize, elemSize);
  }
}

} // namespace

void stridedCopy(const std::byte *src, int64_t srcOffset,
                 const Shape &srcStrides, const Shape &outShape,
                 size_t elemSize, std::byte *dst) {
  if (numElements(outShape) == 0)
    return;
  if (outShape.empty()) {
    std::memcpy(dst, src + srcOffset * elemSize, elemSize);
    return;
  }
  size_t inner = outShape.size() - 1;
  Shape outer(outShape.begin(), outShape.begin() + inner);
  Shape outerStrides(srcStrides.begin(), srcStrides.begin() + inner);
  StridedWalker walker(outer, {outerStrides});
  int64_t rows = numElements(outer), run = outShape[inner];
  uint64_t rowBytes = run * elemSize;
  for (int64_t r = 0; r < rows; ++r, walker.next())
    copyStridedRun(src + (srcOffset + walker.offset(0)) * elemSize,
                   srcStrides[inner], run, elemSize, dst + r * rowBytes);
}

void applyBroadcast(float *y, const Shape &shape, const float *v,
                    const Shape &vShape, float (*op)(float, float)) {
  int64_t n = numElements(shape), m = numElements(vShape);
  // A v whose dims (past leading 1s) are trailing dims of y repeats every m.
  size_t lead = 0;
  while (lead < vShape.size() && vShape[lead] == 1)
    ++lead;
  Shape core(vShape.begin() + lead, vShape.end());
  bool suffix = core.size() <= shape.size() &&
                std::equal(core.begin(), core.end(),
                           shape.end() - static_cast<int64_t>(core.size()));
  if (suffix && m > 0) {
    for (int64_t i = 0; i < n; ++i)
      y[i] = op(y[i], v[i % m]);
    return;
  }
  StridedWalker walker(shape, {broadcastStrides(vShape, shape)});
  for (int64_t i = 0; i < n; ++i, walker.next())
    y[i] = op(y[i], v[walker.offset(0)]);
}

} // namespace weft::runtime::cpu
