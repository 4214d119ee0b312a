// CPU kernels that move bytes: copy, transpose, slice, concat, tile, trilu.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cstring>

namespace weft::runtime::cpu {

//===----------------------------------------------------------------------===//
// COPY
//===----------------------------------------------------------------------===//

Status runCopy(const StepArgs &args) {
  std::memmove(args.outputs[0].data, args.inputs[0].data,
               args.outputs[0].bytes());
  return okStatus();
}

//===----------------------------------------------------------------------===//
// TRANSPOSE
//===----------------------------------------------------------------------===//

Status runTranspose(const StepArgs &args) {
  const InTensor &in = args.inputs[0];
  Shape perm = toShape(args.step.transpose().perm());
  Shape inStrides = contiguousStrides(in.shape), strides;
  for (int64_t p : perm)
    strides.push_back(inStrides[p]);
  stridedCopy(in.data, 0, strides, args.outputs[0].shape, in.elementSize(),
              args.outputs[0].data);
  return okStatus();
}

//===----------------------------------------------------------------------===//
// SLICE
//===----------------------------------------------------------------------===//

Status runSlice(const StepArgs &args) {
  const InTensor &in = args.inputs[0];
  SliceSpec spec = *sliceSpec(args);
  Shape inStrides = contiguousStrides(in.shape), strides;
  int64_t base = 0;
  for (size_t d = 0; d < in.shape.size(); ++d) {
    // An empty dim may start at `dim`; nothing is read there.
    if (spec.outShape[d] > 0)
      base += spec.starts[d] * inStrides[d];
    strides.push_back(spec.steps[d] * inStrides[d]);
  }
  stridedCopy(in.data, base, strides, spec.outShape, in.elementSize(),
              args.outputs[0].data);
  return okStatus();
}

//===----------------------------------------------------------------------===//
// CONCAT
//===----------------------------------------------------------------------===//

Status runConcat(const StepArgs &args) {
  const OutTensor &out = args.outputs[0];
  int64_t axis = *normalizeAxis(args.step.concat().axis(), out.rank());
  int64_t outer = product(out.shape, 0, axis);
  size_t elemSize = out.elementSize();
  std::byte *dst = out.data;
  for (int64_t o = 0; o < outer; ++o) {
    for (const InTensor &in : args.inputs) {
      uint64_t chunk = product(in.shape, axis, in.shape.size()) * elemSize;
      std::memcpy(dst, in.data + o * chunk, chunk);
      dst += chunk;
    }
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// TILE
//===----------------------------------------------------------------------===//

Status runTile(const StepArgs &args) {
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  int64_t n = out.numElements();
  size_t rank = in.shape.size(), elemSize = in.elementSize();
  Shape inStrides = contiguousStrides(in.shape), index(rank, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d)
      src += (index[d] % in.shape[d]) * inStrides[d];
    std::memcpy(out.data + i * elemSize, in.data + src * elemSize, elemSize);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < out.shape[d])
        break;
      index[d] = 0;
    }
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// BROADCAST
//===----------------------------------------------------------------------===//

Status runBroadcast(const StepArgs &args) {
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  stridedCopy(in.data, 0, broadcastStrides(in.shape, out.shape), out.shape,
              in.elementSize(), out.data);
  return okStatus();
}

//===----------------------------------------------------------------------===//
// TRILU
//===----------------------------------------------------------------------===//

Status runTrilu(const StepArgs &args) {
  const InTensor &in = args.inputs[0];
  const OutTensor &out = args.outputs[0];
  bool upper = args.step.trilu().upper();
  int64_t k = args.step.trilu().k();
  int64_t rows = in.shape[in.rank() - 2], cols = in.shape[in.rank() - 1];
  int64_t mats = rows > 0 && cols > 0 ? in.numElements() / (rows * cols) : 0;
  size_t elemSize = in.elementSize();
  std::memcpy(out.data, in.data, out.bytes());
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        if (upper ? j - i < k : j - i > k)
          std::memset(out.data + ((m * rows + i) * cols + j) * elemSize, 0,
                      elemSize);
  return okStatus();
}

} // namespace weft::runtime::cpu
