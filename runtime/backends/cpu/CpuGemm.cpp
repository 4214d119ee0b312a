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

/// Broadcast of two batch shapes (numpy rules).
Result<Shape> broadcastBatch(const Shape &a, const Shape &b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return errorStatus("batch dims " + shapeString(a) + " and " +
                         shapeString(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

} // namespace

Result<GemmShape> gemmShape(const StepArgs &args) {
  GemmShape g;
  auto ta = boolAttr(args.step, "transpose_a");
  auto tb = boolAttr(args.step, "transpose_b");
  if (!ta.ok() || !tb.ok())
    return ta.ok() ? tb.status() : ta.status();
  g.transA = *ta;
  g.transB = *tb;
  const Shape &a = args.inputs[0].shape, &b = args.inputs[1].shape;
  if (b.size() < 2 || a.empty() || (a.size() == 1 && g.transA))
    return errorStatus("operands of shapes " + shapeString(a) + " and " +
                       shapeString(b) +
                       " cannot be multiplied (b needs rank "
                       ">= 2, a rank >= 1, and a 1-D a no transpose)");
  g.vectorA = a.size() == 1;
  size_t ra = a.size(), rb = b.size();
  g.m = g.vectorA ? 1 : (g.transA ? a[ra - 1] : a[ra - 2]);
  int64_t ka = g.vectorA ? a[0] : (g.transA ? a[ra - 2] : a[ra - 1]);
  g.k = g.transB ? b[rb - 1] : b[rb - 2];
  g.n = g.transB ? b[rb - 2] : b[rb - 1];
  if (ka != g.k)
    return errorStatus("contraction dims differ: a " + shapeString(a) +
                       (g.transA ? " (transposed)" : "") + ", b " +
                       shapeString(b) + (g.transB ? " (transposed)" : ""));
  g.batchA = Shape(a.begin(), a.end() - (g.vectorA ? 1 : 2));
  g.batchB = Shape(b.begin(), b.end() - 2);
  auto batch = broadcastBatch(g.batchA, g.batchB);
  if (!batch.ok())
    return batch.status();
  g.batch = *batch;
  g.out = g.batch;
  if (!g.vectorA)
    g.out.push_back(g.m);
  g.out.push_back(g.n);
  return g;
}

namespace {

Status checkGemmSizes(const GemmShape &g) {
  int64_t lda = g.transA ? g.m : g.k, ldb = g.transB ? g.k : g.n;
  for (int64_t v : {g.m, g.n, g.k, lda, ldb})
    if (v > INT_MAX)
      return errorStatus("a matrix dim exceeds the BLAS limit of " +
                         std::to_string(INT_MAX));
  return okStatus();
}

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

Status checkGemm(const StepArgs &args) {
  auto hasBias = boolAttr(args.step, "has_bias");
  if (!hasBias.ok())
    return hasBias.status();
  auto hasResidual = boolAttr(args.step, "has_residual");
  if (!hasResidual.ok())
    return hasResidual.status();
  auto gelu = boolAttr(args.step, "gelu");
  if (!gelu.ok())
    return gelu.status();
  // The epilogue adds the residual before the activation, which is not the
  // gelu(x @ W) + r a block computes (the compiler never fuses both).
  if (*gelu && *hasResidual)
    return errorStatus("gelu cannot be combined with has_residual: the "
                       "epilogue would apply the GELU to the sum");
  std::string flags = *hasBias && *hasResidual ? "has_bias, has_residual: "
                      : *hasBias               ? "has_bias: "
                      : *hasResidual           ? "has_residual: "
                                               : "";
  if (Status s = expectArity(args, 2 + *hasBias + *hasResidual, 1); !s.ok())
    return s.withPrefix(flags);
  auto g = gemmShape(args);
  if (!g.ok())
    return g.status();
  const char *names[] = {"a", "b", *hasBias ? "bias" : "residual", "residual"};
  for (size_t i = 0; i < args.inputs.size(); ++i)
    if (Status s = expectFloat(args.inputs[i].dtype, names[i]); !s.ok())
      return s;
  if (Status s = expectFloat(args.outputs[0].dtype, "output"); !s.ok())
    return s;
  if (*hasBias && !broadcastsTo(args.inputs[2].shape, g->out))
    return errorStatus("bias of shape " + shapeString(args.inputs[2].shape) +
                       " does not broadcast to " + shapeString(g->out));
  if (*hasResidual) {
    // Read element for element beside the output: no broadcast, and the
    // output's dtype (the sum is rounded once, to that type).
    const InTensor &r = args.inputs.back();
    if (r.shape != g->out)
      return errorStatus("residual of shape " + shapeString(r.shape) +
                         " is not the output's " + shapeString(g->out));
    if (Status s = expectSameDType(r.dtype, args.outputs[0].dtype,
                                   "residual and output");
        !s.ok())
      return s;
    // The product is written before the residual is added (here and in
    // the GPU's tuning runs): the two must not share memory.
    auto in = reinterpret_cast<uintptr_t>(r.data),
         out = reinterpret_cast<uintptr_t>(args.outputs[0].data);
    if (in && out && in < out + r.bytes() && out < in + r.bytes())
      return errorStatus("the residual shares memory with the output");
  }
  if (Status s = checkGemmSizes(*g); !s.ok())
    return s;
  return expectShape(args.outputs[0], g->out);
}

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
  if (intAttrOr(args.step, "has_bias", 0)) {
    FloatInput bias(args.inputs[2]);
    applyBroadcast(c, g.out, bias.data(), args.inputs[2].shape, addFloats);
  }
  if (intAttrOr(args.step, "has_residual", 0)) {
    FloatInput residual(args.inputs.back());
    const float *r = residual.data();
    int64_t n = numElements(g.out);
    parallelFor(args, n, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        c[i] += r[i];
    });
  }
  if (intAttrOr(args.step, "gelu", 0)) {
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
