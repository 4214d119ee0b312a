// ATTENTION on the GPU: a fused flash-style kernel on tensor cores (f16 and
// bf16, head dims 64 and 128) and a kernel of one warp per query row for
// everything else (f32, f64, mixed dtypes, other head dims).
//
// Both follow the CPU kernel: scores = scale * q.k + mask, keys j > i + T - S
// masked when causal (the last query row sees every key), softmax per row
// (a row with every key masked gives zeros), then the weighted sum of v.
// Scores are never materialized: a row's maximum and sum are kept online
// and the partial output rescaled when the maximum grows.
#include "runtime/backends/cuda/kernels/Support.cuh"

#include <type_traits>

namespace weft::runtime::cuda::kernels {

namespace {

constexpr float kLog2e = 1.4426950408889634f;

//===----------------------------------------------------------------------===//
// Tensor-core kernel
//===----------------------------------------------------------------------===//

// A block takes 16 query rows of one head per warp (2, 4 or 8 warps) and walks
// the keys in tiles of 64, double-buffered in shared memory with cp.async.
// More warps share each key tile among more rows (fewer loads per row);
// fewer make more blocks for small grids. Shared rows are padded by 16 bytes
// so that the 8 rows an ldmatrix reads fall in distinct banks.
constexpr int kBlockN = 64;

template <int D> constexpr int paddedRow() { return D + 8; }

template <int D, int Warps> constexpr size_t flashSharedBytes() {
  return size_t(Warps * 16 + 4 * kBlockN) * paddedRow<D>() * 2;
}

__device__ __forceinline__ uint32_t sharedAddress(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// Copies 16 bytes to shared memory asynchronously, or zeros them.
__device__ __forceinline__ void copyAsync16(void *dst, const void *src,
                                            bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   sharedAddress(dst)),
               "l"(src), "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void commitAsync() {
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int N> __device__ __forceinline__ void waitAsync() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// Four 8x8 b16 matrices; lanes 8m..8m+7 address the rows of matrix m.
__device__ __forceinline__ void loadMatrices(uint32_t (&r)[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, "
               "[%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(p)));
}

__device__ __forceinline__ void loadMatricesTransposed(uint32_t (&r)[4],
                                                       const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, "
               "%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(p)));
}

/// c += a (16x16, row) * b (16x8, col), f32 accumulation.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4],
                                         uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, "
                 "%2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                   "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, "
                 "%1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                   "r"(b1));
}

/// 2^x by the SFU (relative error about 2^-22; 2^-inf = 0).
__device__ __forceinline__ float fastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/// Two floats rounded to T, the first in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  uint32_t r;
  if constexpr (std::is_same_v<T, __half>) {
    __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&r, &h, 4);
  } else {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    memcpy(&r, &h, 4);
  }
  return r;
}

/// The m16n8k16 fragments, with g = lane / 4 and c = 2 * (lane % 4):
///   A (16x16): a0 (g, c..c+1), a1 (g+8, c..), a2 (g, c+8..), a3 (g+8, c+8..)
///   B (16x8):  b0 (k c..c+1, n g), b1 (k c+8..c+9, n g)
///   C (16x8):  c0,c1 (g, c..c+1), c2,c3 (g+8, c..c+1)
/// Scores of a warp's 16 rows against a 64-key tile are 8 C fragments; as
/// probabilities they are repacked into 4 A fragments without leaving
/// registers.
template <typename T, int D, int Warps>
__global__ void __launch_bounds__(Warps * 32)
    flashAttention(const AttentionParams p) {
  constexpr int kBlockM = Warps * 16, kThreads = Warps * 32;
  extern __shared__ __align__(16) unsigned char shared[];
  constexpr int kRow = paddedRow<D>();
  T *sQ = reinterpret_cast<T *>(shared);
  T *sK = sQ + kBlockM * kRow;
  T *sV = sK + 2 * kBlockN * kRow;

  const int mBlock = gridDim.x - 1 - blockIdx.x; // longest causal rows first
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int64_t s = p.s, t = p.t;
  const int64_t m0 = int64_t(mBlock) * kBlockM;
  const int64_t kvHead = h / (p.hq / p.hkv);
  const T *qHead =
      static_cast<const T *>(p.q) + b * p.qStride[0] + h * p.qStride[1];
  const T *kHead =
      static_cast<const T *>(p.k) + b * p.kStride[0] + kvHead * p.kStride[1];
  const T *vHead =
      static_cast<const T *>(p.v) + b * p.vStride[0] + kvHead * p.vStride[1];
  T *oHead = static_cast<T *>(p.out) + b * p.oStride[0] + h * p.oStride[1];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t offset = t - s; // key j is visible to row i iff j <= i + offset

  int64_t kvEnd = t;
  if (p.causal) {
    kvEnd = m0 + kBlockM + offset;
    kvEnd = kvEnd < 0 ? 0 : (kvEnd > t ? t : kvEnd);
  }
  const int tiles = static_cast<int>((kvEnd + kBlockN - 1) / kBlockN);

  // Rows [row0, row0 + Rows) of `limit` rows `stride` elements apart into
  // shared rows; rows past the limit become zeros.
  auto loadRows = [&](T *dst, const T *src, int64_t stride, int rows,
                      int64_t row0, int64_t limit) {
    constexpr int kChunks = D / 8; // 16-byte chunks per row
    for (int c = threadIdx.x; c < rows * kChunks; c += kThreads) {
      int r = c / kChunks, col = (c % kChunks) * 8;
      bool valid = row0 + r < limit;
      copyAsync16(dst + r * kRow + col,
                  valid ? src + (row0 + r) * stride + col : src, valid);
    }
  };
  auto loadQ = [&](T *dst, int64_t row0) {
    loadRows(dst, qHead, p.qStride[2], kBlockM, row0, s);
  };
  auto loadK = [&](T *dst, int64_t row0) {
    loadRows(dst, kHead, p.kStride[2], kBlockN, row0, t);
  };
  auto loadV = [&](T *dst, int64_t row0) {
    loadRows(dst, vHead, p.vStride[2], kBlockN, row0, t);
  };

  const int64_t rowA = m0 + warp * 16 + lane / 4; // and rowA + 8
  float o[D / 8][4];
  for (int i = 0; i < D / 8; ++i)
    o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.0f, 0.0f};

  if (tiles > 0) {
    loadQ(sQ, m0);
    loadK(sK, 0);
    loadV(sV, 0);
  }
  commitAsync();

  uint32_t qa[D / 16][4];
  const float scaleLog2 = p.scale * kLog2e;
  for (int tile = 0; tile < tiles; ++tile) {
    const int stage = tile & 1;
    if (tile + 1 < tiles) {
      loadK(sK + (stage ^ 1) * kBlockN * kRow, int64_t(tile + 1) * kBlockN);
      loadV(sV + (stage ^ 1) * kBlockN * kRow, int64_t(tile + 1) * kBlockN);
    }
    commitAsync(); // possibly empty: keeps one group per tile
    waitAsync<1>();
    __syncthreads();
    if (tile == 0)
      for (int kk = 0; kk < D / 16; ++kk)
        loadMatrices(
            qa[kk],
            sQ + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kRow +
                kk * 16 + (lane >> 4) * 8);
    const T *kTile = sK + stage * kBlockN * kRow;
    const T *vTile = sV + stage * kBlockN * kRow;

    // S = Q K^T for the warp's 16 rows and the tile's 64 keys.
    float sc[kBlockN / 8][4];
    for (int i = 0; i < kBlockN / 8; ++i)
      sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.0f;
    for (int kk = 0; kk < D / 16; ++kk) {
      for (int pair = 0; pair < kBlockN / 16; ++pair) {
        uint32_t r[4];
        loadMatrices(r, kTile +
                            (pair * 16 + (lane & 7) + (lane >> 4) * 8) * kRow +
                            kk * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(sc[2 * pair], qa[kk], r[0], r[1]);
        mma16816<T>(sc[2 * pair + 1], qa[kk], r[2], r[3]);
      }
    }

    // Scale into the log2 domain, add the mask, hide masked keys.
    const int64_t n0 = int64_t(tile) * kBlockN;
    const bool edge = n0 + kBlockN > t ||
                      (p.causal && n0 + kBlockN - 1 > m0 + warp * 16 + offset);
    for (int nb = 0; nb < kBlockN / 8; ++nb) {
      for (int e = 0; e < 4; ++e) {
        int64_t row = rowA + (e >= 2 ? 8 : 0);
        int64_t col = n0 + nb * 8 + 2 * (lane % 4) + (e & 1);
        float x = sc[nb][e] * scaleLog2;
        if (p.mask && row < s && col < t)
          x += loadFloat(p.mask,
                         b * p.maskStride[0] + h * p.maskStride[1] +
                             row * p.maskStride[2] + col * p.maskStride[3],
                         p.maskType) *
               kLog2e;
        if (edge && (col >= t || (p.causal && col > row + offset)))
          x = -INFINITY;
        sc[nb][e] = x;
      }
    }

    // Online softmax: the four lanes of a quad share each row.
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
      for (int nb = 0; nb < kBlockN / 8; ++nb)
        mx = fmaxf(mx, fmaxf(sc[nb][2 * r], sc[nb][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      float newMax = fmaxf(rowMax[r], mx);
      // A row masked so far keeps a finite shift: exp2(-inf - 0) = 0.
      float shift = newMax == -INFINITY ? 0.0f : newMax;
      float alpha = fastExp2(rowMax[r] - shift);
      rowMax[r] = newMax;
      float sum = 0.0f;
      for (int nb = 0; nb < kBlockN / 8; ++nb) {
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          float pr = fastExp2(sc[nb][e] - shift);
          sc[nb][e] = pr;
          sum += pr;
        }
      }
      rowSum[r] = rowSum[r] * alpha + sum;
      for (int i = 0; i < D / 8; ++i) {
        o[i][2 * r] *= alpha;
        o[i][2 * r + 1] *= alpha;
      }
    }

    // O += P V.
    for (int kc = 0; kc < kBlockN / 16; ++kc) {
      uint32_t pa[4] = {pack2<T>(sc[2 * kc][0], sc[2 * kc][1]),
                        pack2<T>(sc[2 * kc][2], sc[2 * kc][3]),
                        pack2<T>(sc[2 * kc + 1][0], sc[2 * kc + 1][1]),
                        pack2<T>(sc[2 * kc + 1][2], sc[2 * kc + 1][3])};
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t r[4];
        loadMatricesTransposed(
            r, vTile + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kRow +
                   dp * 16 + (lane >> 4) * 8);
        mma16816<T>(o[2 * dp], pa, r[0], r[1]);
        mma16816<T>(o[2 * dp + 1], pa, r[2], r[3]);
      }
    }
    __syncthreads(); // the next iteration refills this stage
  }
  waitAsync<0>();

  for (int r = 0; r < 2; ++r) {
    float l = rowSum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    int64_t row = rowA + 8 * r;
    if (row >= s)
      continue;
    for (int i = 0; i < D / 8; ++i) {
      int col = i * 8 + 2 * (lane % 4);
      *reinterpret_cast<uint32_t *>(oHead + row * p.oStride[2] + col) =
          pack2<T>(o[i][2 * r] * inv, o[i][2 * r + 1] * inv);
    }
  }
}

template <typename T, int D, int Warps> auto flashKernel() {
  return flashAttention<T, D, Warps>;
}

//===----------------------------------------------------------------------===//
// Row kernel
//===----------------------------------------------------------------------===//

/// One warp per query row; lane l holds dims l, l + 32, ... of q and of the
/// output. Any float dtypes, head dims up to 256.
__global__ void attentionRows(const AttentionParams p) {
  constexpr int kPer = kMaxRowKernelHeadDim / 32;
  int64_t warpId = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  int lane = threadIdx.x % 32;
  if (warpId >= p.b * p.hq * p.s)
    return;
  int64_t i = warpId % p.s, bh = warpId / p.s;
  int64_t h = bh % p.hq, b = bh / p.hq;
  int64_t kvHead = h / (p.hq / p.hkv);
  int64_t qBase = b * p.qStride[0] + h * p.qStride[1] + i * p.qStride[2];
  int64_t kBase = b * p.kStride[0] + kvHead * p.kStride[1];
  int64_t vBase = b * p.vStride[0] + kvHead * p.vStride[1];
  float q[kPer], acc[kPer];
  for (int c = 0; c < kPer; ++c) {
    int64_t dim = lane + 32 * c;
    q[c] = dim < p.d ? loadFloat(p.q, qBase + dim, p.qType) : 0.0f;
    acc[c] = 0.0f;
  }
  int64_t keys = p.t;
  if (p.causal) {
    keys = i + p.t - p.s + 1;
    keys = keys < 0 ? 0 : (keys > p.t ? p.t : keys);
  }
  float rowMax = -INFINITY, rowSum = 0.0f;
  for (int64_t j = 0; j < keys; ++j) {
    float dot = 0.0f;
    for (int c = 0; c < kPer; ++c) {
      int64_t dim = lane + 32 * c;
      if (dim < p.d)
        dot += q[c] * loadFloat(p.k, kBase + j * p.kStride[2] + dim, p.kType);
    }
    float x = warpSum(dot) * p.scale;
    if (p.mask)
      x += loadFloat(p.mask,
                     b * p.maskStride[0] + h * p.maskStride[1] +
                         i * p.maskStride[2] + j * p.maskStride[3],
                     p.maskType);
    if (x == -INFINITY)
      continue;
    float newMax = fmaxf(rowMax, x);
    float alpha = expf(rowMax - newMax), pr = expf(x - newMax);
    rowMax = newMax;
    rowSum = rowSum * alpha + pr;
    for (int c = 0; c < kPer; ++c) {
      int64_t dim = lane + 32 * c;
      if (dim < p.dv)
        acc[c] = acc[c] * alpha +
                 pr * loadFloat(p.v, vBase + j * p.vStride[2] + dim, p.vType);
    }
  }
  float inv = rowSum > 0.0f ? 1.0f / rowSum : 0.0f;
  int64_t oBase = b * p.oStride[0] + h * p.oStride[1] + i * p.oStride[2];
  for (int c = 0; c < kPer; ++c) {
    int64_t dim = lane + 32 * c;
    if (dim < p.dv)
      storeFloat(p.out, oBase + dim, p.outType, acc[c] * inv);
  }
}

/// Query rows per block for p: 128 (8 warps) unless the grid would then
/// leave most of the GPU idle; at head dim 64, 32 (2 warps) where even 64
/// would leave SMs without a block (a prompt of one sequence split over
/// tensor-parallel ranks has few heads per rank). At head dim 128, 2-warp
/// blocks ran slower even on such grids (docs/perf.md).
int flashBlockRows(const AttentionParams &p) {
  if (p.blockRows == 32 || p.blockRows == 64 || p.blockRows == 128)
    return p.blockRows;
  // About two blocks per SM of an H100 or H200 (132 SMs) at 128 rows.
  int64_t wideBlocks = p.b * p.hq * ((p.s + 127) / 128);
  if (wideBlocks >= 256)
    return 128;
  int64_t blocks = p.b * p.hq * ((p.s + 63) / 64);
  return p.d == 64 && blocks < 132 ? 32 : 64;
}

template <int D, int Warps, typename Fn>
cudaError_t withFlashKernelOf(bool half, Fn fn) {
  constexpr size_t bytes = flashSharedBytes<D, Warps>();
  return half ? fn(flashKernel<__half, D, Warps>(), bytes, Warps)
              : fn(flashKernel<__nv_bfloat16, D, Warps>(), bytes, Warps);
}

template <typename Fn>
cudaError_t withFlashKernel(const AttentionParams &p, Fn fn) {
  bool half = p.qType == kF16;
  int rows = flashBlockRows(p);
  if (p.d == 64)
    return rows == 128  ? withFlashKernelOf<64, 8>(half, fn)
           : rows == 64 ? withFlashKernelOf<64, 4>(half, fn)
                        : withFlashKernelOf<64, 2>(half, fn);
  return rows == 128  ? withFlashKernelOf<128, 8>(half, fn)
         : rows == 64 ? withFlashKernelOf<128, 4>(half, fn)
                      : withFlashKernelOf<128, 2>(half, fn);
}

bool rowsAligned(const int64_t (&stride)[3]) {
  return stride[0] % 8 == 0 && stride[1] % 8 == 0 && stride[2] % 8 == 0;
}

} // namespace

bool attentionUsesTensorCores(const AttentionParams &p) {
  bool sameType = (p.qType == kF16 || p.qType == kBF16) && p.kType == p.qType &&
                  p.vType == p.qType && p.outType == p.qType;
  return sameType && (p.d == 64 || p.d == 128) && p.dv == p.d &&
         aligned16(p.q) && aligned16(p.k) && aligned16(p.v) &&
         aligned16(p.out) && rowsAligned(p.qStride) && rowsAligned(p.kStride) &&
         rowsAligned(p.vStride) && rowsAligned(p.oStride) &&
         p.hq / p.hkv <= 65535 && p.hq <= 65535 && p.b <= 65535;
}

cudaError_t prepareAttention(const AttentionParams &p) {
  if (!attentionUsesTensorCores(p))
    return cudaSuccess;
  return withFlashKernel(p, [](auto kernel, size_t bytes, int) {
    return cudaFuncSetAttribute(kernel,
                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(bytes));
  });
}

cudaError_t launchAttention(const AttentionParams &p, cudaStream_t stream) {
  int64_t rows = p.b * p.hq * p.s;
  if (rows == 0 || p.dv == 0)
    return cudaSuccess;
  if (attentionUsesTensorCores(p)) {
    return withFlashKernel(p, [&](auto kernel, size_t bytes, int warps) {
      int rows = warps * 16;
      dim3 grid(static_cast<unsigned>((p.s + rows - 1) / rows),
                static_cast<unsigned>(p.hq), static_cast<unsigned>(p.b));
      kernel<<<grid, warps * 32, bytes, stream>>>(p);
      return cudaGetLastError();
    });
  }
  constexpr int kRowThreads = 128;
  attentionRows<<<blocksFor(rows * 32, kRowThreads), kRowThreads, 0, stream>>>(
      p);
  return cudaGetLastError();
}

} // namespace weft::runtime::cuda::kernels
