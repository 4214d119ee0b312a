// CPU kernels that index: EMBEDDING, GATHER, GATHER_ND and GATHER_ELEMENTS.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cstring>

namespace weft::runtime::cpu {

namespace {

/// Index `i` of the indices tensor made non-negative (when `wrap`) and
/// checked against [0, dim).
Result<int64_t> indexAt(const InTensor &indices, int64_t i, int64_t dim,
                        bool wrap) {
  int64_t v = loadInt(indices.dtype, indices.data, i);
  int64_t idx = wrap && v < 0 ? v + dim : v;
  if (idx < 0 || idx >= dim)
    return errorStatus("index " + std::to_string(v) + " (element " +
                       std::to_string(i) +
                       " of the indices) is out of range "
                       "for a dim of size " +
                       std::to_string(dim));
  return idx;
}

} // namespace

//===----------------------------------------------------------------------===//
// EMBEDDING
//===----------------------------------------------------------------------===//

Status runEmbedding(const StepArgs &args) {
  const InTensor &table = args.inputs[0], &ids = args.inputs[1];
  uint64_t rowBytes =
      product(table.shape, 1, table.shape.size()) * table.elementSize();
  // A vocab-parallel shard holds ids [vocab_start, vocab_start + rows);
  // other ids give zero rows (the ranks' rows are summed afterwards).
  const artifact::EmbeddingAttrs &attrs = args.step.embedding();
  bool shard = attrs.has_vocab_start();
  int64_t rows = table.shape[0];
  for (int64_t i = 0; i < ids.numElements(); ++i) {
    std::byte *dst = args.outputs[0].data + i * rowBytes;
    if (shard) {
      int64_t v = loadInt(ids.dtype, ids.data, i);
      // Unsigned: ids far from the shard (either side) fall outside.
      uint64_t row =
          static_cast<uint64_t>(v) - static_cast<uint64_t>(attrs.vocab_start());
      if (row < static_cast<uint64_t>(rows))
        std::memcpy(dst, table.data + row * rowBytes, rowBytes);
      else
        std::memset(dst, 0, rowBytes);
      continue;
    }
    auto id = indexAt(ids, i, rows, /*wrap=*/false);
    if (!id.ok())
      return id.status().withPrefix("embedding id: ");
    std::memcpy(dst, table.data + *id * rowBytes, rowBytes);
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// GATHER
//===----------------------------------------------------------------------===//

Status runGather(const StepArgs &args) {
  const InTensor &data = args.inputs[0], &indices = args.inputs[1];
  int64_t axis = *gatherAxis(args);
  int64_t outer = product(data.shape, 0, axis), dim = data.shape[axis];
  uint64_t chunk =
      product(data.shape, axis + 1, data.shape.size()) * data.elementSize();
  int64_t count = indices.numElements();
  std::byte *dst = args.outputs[0].data;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < count; ++i, dst += chunk) {
      auto idx = indexAt(indices, i, dim, /*wrap=*/true);
      if (!idx.ok())
        return idx.status();
      std::memcpy(dst, data.data + (o * dim + *idx) * chunk, chunk);
    }
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// GATHER_ND
//===----------------------------------------------------------------------===//

Status runGatherNd(const StepArgs &args) {
  const InTensor &data = args.inputs[0], &indices = args.inputs[1];
  GatherNdShape g = *gatherNdShape(args);
  int64_t b = g.batchDims, depth = g.depth;
  Shape strides = contiguousStrides(data.shape);
  int64_t batches = product(data.shape, 0, b);
  int64_t batchStride = product(data.shape, b, data.shape.size());
  int64_t tuples = product(indices.shape, b, indices.shape.size() - 1);
  uint64_t chunk =
      product(data.shape, b + depth, data.shape.size()) * data.elementSize();
  std::byte *dst = args.outputs[0].data;
  for (int64_t n = 0; n < batches; ++n) {
    for (int64_t t = 0; t < tuples; ++t, dst += chunk) {
      int64_t off = n * batchStride;
      for (int64_t k = 0; k < depth; ++k) {
        auto idx = indexAt(indices, (n * tuples + t) * depth + k,
                           data.shape[b + k], /*wrap=*/true);
        if (!idx.ok())
          return idx.status();
        off += *idx * strides[b + k];
      }
      std::memcpy(dst, data.data + off * data.elementSize(), chunk);
    }
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// GATHER_ELEMENTS
//===----------------------------------------------------------------------===//

Status runGatherElements(const StepArgs &args) {
  const InTensor &data = args.inputs[0], &indices = args.inputs[1];
  int64_t axis = *gatherAxis(args);
  Shape strides = contiguousStrides(data.shape), offStrides = strides;
  offStrides[axis] = 0;
  StridedWalker walker(indices.shape, {offStrides});
  size_t elemSize = data.elementSize();
  for (int64_t i = 0; i < indices.numElements(); ++i, walker.next()) {
    auto idx = indexAt(indices, i, data.shape[axis], /*wrap=*/true);
    if (!idx.ok())
      return idx.status();
    int64_t src = walker.offset(0) + *idx * strides[axis];
    std::memcpy(args.outputs[0].data + i * elemSize, data.data + src * elemSize,
                elemSize);
  }
  return okStatus();
}

} // namespace weft::runtime::cpu
