// Checks of GEMM steps and the shapes their kernels read.
#include "runtime/steps/StepChecks.h"

#include <climits>
#include <cstdint>
#include <cstring>

namespace weft::runtime::steps {

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
  g.transA = args.step.gemm().transpose_a();
  g.transB = args.step.gemm().transpose_b();
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

} // namespace

Status checkGemm(const StepArgs &args) {
  const artifact::GemmAttrs &attrs = args.step.gemm();
  bool hasBias = attrs.has_bias(), hasResidual = attrs.has_residual(),
       gelu = attrs.gelu();
  // The epilogue adds the residual before the activation, which is not the
  // gelu(x @ W) + r a block computes (the compiler never fuses both).
  if (gelu && hasResidual)
    return errorStatus("gelu cannot be combined with has_residual: the "
                       "epilogue would apply the GELU to the sum");
  std::string flags = hasBias && hasResidual ? "has_bias, has_residual: "
                      : hasBias              ? "has_bias: "
                      : hasResidual          ? "has_residual: "
                                             : "";
  if (Status s = expectArity(args, 2 + hasBias + hasResidual, 1); !s.ok())
    return s.withPrefix(flags);
  auto g = gemmShape(args);
  if (!g.ok())
    return g.status();
  const char *names[] = {"a", "b", hasBias ? "bias" : "residual", "residual"};
  for (size_t i = 0; i < args.inputs.size(); ++i)
    if (Status s = expectFloat(args.inputs[i].dtype, names[i]); !s.ok())
      return s;
  if (Status s = expectFloat(args.outputs[0].dtype, "output"); !s.ok())
    return s;
  if (hasBias && !broadcastsTo(args.inputs[2].shape, g->out))
    return errorStatus("bias of shape " + shapeString(args.inputs[2].shape) +
                       " does not broadcast to " + shapeString(g->out));
  if (hasResidual) {
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

} // namespace weft::runtime::steps
