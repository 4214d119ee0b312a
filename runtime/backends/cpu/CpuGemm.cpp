// CPU kernel of GEMM: batched matrix products through cblas_sgemm (or a
// blocked loop where the runtime is built without BLAS).
#include "runtime/backends/cpu/CpuSupport.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#ifndef WEFT_NO_BLAS
#include <cblas.h>
#endif

namespace weft::runtime::cpu {

namespace {

/// C[rows, cols] block of one batch: splits rows (m) or columns (n).
void gemmBlock(const GemmShape &g, const float *a, const float *b, float *c,
               int64_t r0, int64_t r1, bool splitRows) {
  int lda = static_cast<int>(g.transA ? g.m : g.k);
  int ldb = static_cast<int>(g.transB ? g.k : g.n);
  int ldc = static_cast<int>(g.n);
  int64_t m = g.m, n = g.n;
  if (splitRows) {
    a += g.transA ? r0 : r0 * g.k;
    c += r0 * g.n;
    m = r1 - r0;
  } else {
    b += g.transB ? r0 * g.k : r0;
    c += r0;
    n = r1 - r0;
  }
  sgemm(g.transA, g.transB, m, n, g.k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

float addFloats(float x, float y) { return x + y; }

} // namespace

#ifndef WEFT_NO_BLAS
void useSingleThreadedBlas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           float alpha, const float *a, int64_t lda, const float *b,
           int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
              transB ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}
#else
void useSingleThreadedBlas() {}

void sgemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
           float alpha, const float *a, int64_t lda, const float *b,
           int64_t ldb, float beta, float *c, int64_t ldc) {
  // Blocks of op(A) and op(B) are copied into contiguous row-major panels, so
  // the inner loop runs over unit-stride rows of B and C whatever the
  // transposes, and a kBlockK x kBlockN panel of B stays in cache while
  // every row of C's block reuses it.
  constexpr int64_t kBlockK = 128, kBlockN = 256;
  for (int64_t i = 0; i < m; ++i) {
    float *row = c + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + n, 0.0f);
    else if (beta != 1.0f)
      for (int64_t j = 0; j < n; ++j)
        row[j] *= beta;
  }
  std::vector<float> panelB(kBlockK * kBlockN), panelA(kBlockK);
  for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
    int64_t kb = std::min(kBlockK, k - p0);
    for (int64_t j0 = 0; j0 < n; j0 += kBlockN) {
      int64_t nb = std::min(kBlockN, n - j0);
      for (int64_t p = 0; p < kb; ++p)
        for (int64_t j = 0; j < nb; ++j)
          panelB[p * nb + j] =
              transB ? b[(j0 + j) * ldb + p0 + p] : b[(p0 + p) * ldb + j0 + j];
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t p = 0; p < kb; ++p)
          panelA[p] =
              alpha * (transA ? a[(p0 + p) * lda + i] : a[i * lda + p0 + p]);
        float *row = c + i * ldc + j0;
        for (int64_t p = 0; p < kb; ++p) {
          float x = panelA[p];
          const float *bp = panelB.data() + p * nb;
          for (int64_t j = 0; j < nb; ++j)
            row[j] += x * bp[j];
        }
      }
    }
  }
}
#endif

Status runGemm(const StepArgs &args) {
  useSingleThreadedBlas();
  GemmShape g = *gemmShape(args);
  FloatInput a(args.inputs[0]), b(args.inputs[1]);
  FloatOutput out(args.outputs[0]);
  float *c = out.data();
  int64_t batches = numElements(g.batch);
  if (g.k == 0)
    std::fill(c, c + numElements(g.out), 0.0f);
  if (g.k > 0 && g.m > 0 && g.n > 0 && batches > 0) {
    // Tasks are (batch, block of rows or columns), about 4 per thread.
    bool splitRows = g.m >= g.n;
    int64_t extent = splitRows ? g.m : g.n;
    int64_t threads = args.pool ? args.pool->size() : 1;
    int64_t wanted =
        std::max<int64_t>(1, (4 * threads + batches - 1) / batches);
    int64_t block =
        std::max<int64_t>(std::max<int64_t>(1, (extent + wanted - 1) / wanted),
                          splitRows ? 16 : 64);
    int64_t blocks = (extent + block - 1) / block;
    BatchMap map(g);
    parallelFor(args, batches * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        auto [oa, ob] = map(t / blocks);
        int64_t r0 = (t % blocks) * block;
        gemmBlock(g, a.data() + oa * g.m * g.k, b.data() + ob * g.k * g.n,
                  c + (t / blocks) * g.m * g.n, r0,
                  std::min(r0 + block, extent), splitRows);
      }
    });
  }
  // Bias, residual and GELU go into the f32 accumulator; the output is
  // rounded once, as the GPU's epilogue does.
  if (args.step.gemm().has_bias()) {
    FloatInput bias(args.inputs[2]);
    applyBroadcast(c, g.out, bias.data(), args.inputs[2].shape, addFloats);
  }
  if (args.step.gemm().has_residual()) {
    FloatInput residual(args.inputs.back());
    const float *r = residual.data();
    int64_t n = numElements(g.out);
    parallelFor(args, n, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        c[i] += r[i];
    });
  }
  if (args.step.gemm().gelu()) {
    int64_t n = numElements(g.out);
    parallelFor(args, n, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        c[i] = float(geluTanh(c[i]));
    });
  }
  out.commit();
  return okStatus();
}

} // namespace weft::runtime::cpu
