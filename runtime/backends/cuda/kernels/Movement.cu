// Data movement kernels by element size: strided copies (TRANSPOSE, SLICE,
// CONCAT, TILE, BROADCAST), TRILU and the gathers (EMBEDDING, GATHER,
// GATHER_ND, GATHER_ELEMENTS).
#include "runtime/backends/cuda/kernels/Support.cuh"

namespace weft::runtime::cuda::kernels {

namespace {

constexpr int kThreads = 256;

/// Grid-stride blocks, capped: kernels loop over what one pass misses.
unsigned cappedBlocks(int64_t n) {
  unsigned blocks = blocksFor(n, kThreads);
  return blocks > 65536 ? 65536 : blocks;
}

template <typename Fn>
__device__ __forceinline__ void gridLoop(int64_t n, Fn fn) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    fn(i);
}

/// Unsigned types of 1, 2, 4, 8 and 16 bytes move elements and chunks.
template <int Bytes> struct Unit;
template <> struct Unit<1> { using type = uint8_t; };
template <> struct Unit<2> { using type = uint16_t; };
template <> struct Unit<4> { using type = uint32_t; };
template <> struct Unit<8> { using type = uint2; };
template <> struct Unit<16> { using type = uint4; };

/// Calls fn.template operator()<Bytes>() for a size of 1, 2, 4, 8 or 16.
template <typename Fn> cudaError_t withUnit(int bytes, Fn fn) {
  switch (bytes) {
  case 1:
    return fn(Unit<1>{});
  case 2:
    return fn(Unit<2>{});
  case 4:
    return fn(Unit<4>{});
  case 8:
    return fn(Unit<8>{});
  default:
    return fn(Unit<16>{});
  }
}

/// The widest unit (up to 16 bytes) dividing `bytes` and every pointer.
int widestUnit(int64_t bytes, std::initializer_list<const void *> ptrs) {
  for (int unit = 16; unit > 1; unit /= 2) {
    bool fits = bytes % unit == 0;
    for (const void *p : ptrs)
      fits = fits && reinterpret_cast<uintptr_t>(p) % unit == 0;
    if (fits)
      return unit;
  }
  return 1;
}

//===----------------------------------------------------------------------===//
// Strided copy
//===----------------------------------------------------------------------===//

template <typename U>
__global__ void stridedCopy(const StridedCopyParams p, int64_t n) {
  const U *src = static_cast<const U *>(p.src);
  U *dst = static_cast<U *>(p.dst);
  gridLoop(n, [&](int64_t i) {
    int64_t s = p.srcBase, d = p.dstBase, rest = i;
    for (int k = p.rank - 1; k >= 0; --k) {
      int64_t dim = p.shape[k];
      int64_t idx = rest % dim;
      rest /= dim;
      d += idx * p.dstStride[k];
      s += (p.modulo[k] > 0 ? idx % p.modulo[k] : idx) * p.srcStride[k];
    }
    dst[d] = src[s];
  });
}

//===----------------------------------------------------------------------===//
// Tiled transpose
//===----------------------------------------------------------------------===//

constexpr int kTile = 32, kTileRows = 8;

/// Block (32, 8) per 32x32 tile; the padded row keeps the column reads of
/// the tile free of bank conflicts.
template <typename U> __global__ void transposeTiles(const TransposeParams p) {
  __shared__ U tile[kTile][kTile + 1];
  const U *src = static_cast<const U *>(p.src);
  U *dst = static_cast<U *>(p.dst);
  int64_t a0 = int64_t(blockIdx.y) * kTile, b0 = int64_t(blockIdx.x) * kTile;
  for (int64_t n = blockIdx.z; n < p.batches; n += gridDim.z) {
    int64_t srcOff = mapOffset(p.srcBatch, n),
            dstOff = mapOffset(p.dstBatch, n);
    for (int j = threadIdx.y; j < kTile; j += kTileRows) {
      int64_t a = a0 + threadIdx.x, b = b0 + j;
      if (a < p.a && b < p.b)
        tile[j][threadIdx.x] = src[srcOff + a + b * p.srcStrideB];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < kTile; j += kTileRows) {
      int64_t a = a0 + j, b = b0 + threadIdx.x;
      if (a < p.a && b < p.b)
        dst[dstOff + a * p.dstStrideA + b] = tile[threadIdx.x][j];
    }
    __syncthreads(); // the tile is refilled for the next batch
  }
}

//===----------------------------------------------------------------------===//
// TRILU
//===----------------------------------------------------------------------===//

template <typename U> __global__ void trilu(const TriluParams p, int64_t n) {
  const U *src = static_cast<const U *>(p.src);
  U *dst = static_cast<U *>(p.dst);
  gridLoop(n, [&](int64_t e) {
    int64_t j = e % p.cols, i = (e / p.cols) % p.rows;
    bool zero = p.upper ? j - i < p.k : j - i > p.k;
    dst[e] = zero ? U{} : src[e];
  });
}

//===----------------------------------------------------------------------===//
// Gathers
//===----------------------------------------------------------------------===//

/// Chunk units of `unitsPerChunk`: out position (o, i, u).
template <typename U>
__global__ void gather(const GatherParams p, int64_t unitsPerChunk, int64_t n) {
  const U *data = static_cast<const U *>(p.data);
  U *out = static_cast<U *>(p.out);
  gridLoop(n, [&](int64_t e) {
    int64_t u = e % unitsPerChunk, oi = e / unitsPerChunk;
    int64_t i = oi % p.count, o = oi / p.count;
    int64_t v = loadInt(p.indices, i, p.indexType);
    int64_t idx =
        p.shard ? v - p.vocabStart : (p.wrap && v < 0 ? v + p.dim : v);
    bool inRange = idx >= 0 && idx < p.dim;
    out[e] = inRange ? data[((o * p.dim + idx) * unitsPerChunk) + u] : U{};
  });
}

template <typename U>
__global__ void gatherNd(const GatherNdParams p, int64_t n) {
  const U *data = static_cast<const U *>(p.data);
  U *out = static_cast<U *>(p.out);
  gridLoop(n, [&](int64_t e) {
    int64_t c = e % p.chunk, nt = e / p.chunk; // nt = batch * tuples + tuple
    int64_t off = (nt / p.tuples) * p.batchStride;
    bool inRange = true;
    for (int k = 0; k < p.depth; ++k) {
      int64_t v = loadInt(p.indices, nt * p.depth + k, p.indexType);
      int64_t idx = v < 0 ? v + p.dataDim[k] : v;
      inRange = inRange && idx >= 0 && idx < p.dataDim[k];
      off += idx * p.dataStride[k];
    }
    out[e] = inRange ? data[off + c] : U{};
  });
}

template <typename U>
__global__ void gatherElements(const GatherElementsParams p) {
  const U *data = static_cast<const U *>(p.data);
  U *out = static_cast<U *>(p.out);
  gridLoop(p.n, [&](int64_t e) {
    int64_t v = loadInt(p.indices, e, p.indexType);
    int64_t idx = v < 0 ? v + p.axisDim : v;
    bool inRange = idx >= 0 && idx < p.axisDim;
    out[e] = inRange ? data[mapOffset(p.offMap, e) + idx * p.axisStride] : U{};
  });
}

} // namespace

cudaError_t launchStridedCopy(const StridedCopyParams &p, cudaStream_t stream) {
  int64_t n = 1;
  for (int k = 0; k < p.rank; ++k)
    n *= p.shape[k];
  if (n == 0)
    return cudaSuccess;
  return withUnit(p.elemSize, [&](auto unit) {
    using U = typename decltype(unit)::type;
    stridedCopy<U><<<cappedBlocks(n), kThreads, 0, stream>>>(p, n);
    return cudaGetLastError();
  });
}

cudaError_t launchTranspose(const TransposeParams &p, cudaStream_t stream) {
  if (p.a == 0 || p.b == 0 || p.batches == 0)
    return cudaSuccess;
  int64_t tilesA = (p.a + kTile - 1) / kTile,
          tilesB = (p.b + kTile - 1) / kTile;
  if (tilesA > 65535 || tilesB > 0x7fffffff)
    return cudaErrorInvalidConfiguration; // refused at bind
  dim3 grid(static_cast<unsigned>(tilesB), static_cast<unsigned>(tilesA),
            static_cast<unsigned>(p.batches < 65535 ? p.batches : 65535));
  return withUnit(p.elemSize, [&](auto unit) {
    using U = typename decltype(unit)::type;
    transposeTiles<U><<<grid, dim3(kTile, kTileRows), 0, stream>>>(p);
    return cudaGetLastError();
  });
}

cudaError_t launchTrilu(const TriluParams &p, cudaStream_t stream) {
  int64_t n = p.mats * p.rows * p.cols;
  if (n == 0)
    return cudaSuccess;
  return withUnit(p.elemSize, [&](auto unit) {
    using U = typename decltype(unit)::type;
    trilu<U><<<cappedBlocks(n), kThreads, 0, stream>>>(p, n);
    return cudaGetLastError();
  });
}

cudaError_t launchGather(const GatherParams &p, cudaStream_t stream) {
  if (p.outer * p.count * p.chunkBytes == 0)
    return cudaSuccess;
  int unit = widestUnit(p.chunkBytes, {p.data, p.out});
  int64_t units = p.chunkBytes / unit, n = p.outer * p.count * units;
  return withUnit(unit, [&](auto u) {
    using U = typename decltype(u)::type;
    gather<U><<<cappedBlocks(n), kThreads, 0, stream>>>(p, units, n);
    return cudaGetLastError();
  });
}

cudaError_t launchGatherNd(const GatherNdParams &p, cudaStream_t stream) {
  int64_t n = p.batches * p.tuples * p.chunk;
  if (n == 0)
    return cudaSuccess;
  return withUnit(p.elemSize, [&](auto unit) {
    using U = typename decltype(unit)::type;
    gatherNd<U><<<cappedBlocks(n), kThreads, 0, stream>>>(p, n);
    return cudaGetLastError();
  });
}

cudaError_t launchGatherElements(const GatherElementsParams &p,
                                 cudaStream_t stream) {
  if (p.n == 0)
    return cudaSuccess;
  return withUnit(p.elemSize, [&](auto unit) {
    using U = typename decltype(unit)::type;
    gatherElements<U><<<cappedBlocks(p.n), kThreads, 0, stream>>>(p);
    return cudaGetLastError();
  });
}

} // namespace weft::runtime::cuda::kernels
