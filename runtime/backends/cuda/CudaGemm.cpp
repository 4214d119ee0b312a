// GEMM steps through cuBLASLt.
//
// cuBLASLt is column-major; a row-major C[m, n] = A[m, k] B[k, n] is the
// column-major C^T[n, m] = B^T[n, k] A^T[k, m], and a row-major matrix read
// column-major is its transpose. So each product is issued with the
// operands swapped and no data moved; the bias (one value per column of
// the row-major C) becomes cuBLASLt's per-row bias epilogue of C^T. A
// residual is cuBLASLt's C with beta = 1 (D = A B + C), laid out like D: it
// is read in the epilogue and added to the f32 accumulator before the one
// rounding. A `gelu` step is the GELU (tanh-approximated, as the CPU
// kernel's) epilogue, after the bias.
//
// Products of a few rows of 16-bit operands (the decode projections) run
// the skinny-GEMM kernel instead (kernels/Gemv.cu): the time is all in
// reading the weight once, and the kernel reads it faster than cuBLASLt
// up to kGemvMaxRows rows, alone or grouped with the other projections of
// the same activations (StepGroups.h, bindGemvGroup).
#include "runtime/backends/cuda/CudaGemm.h"

#include "runtime/backends/cuda/kernels/Kernels.h"
#include "runtime/steps/StepChecks.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>
#include <sstream>

namespace weft::runtime::cuda {

namespace {

constexpr uint64_t kWorkspaceBytes = 32ull << 20;
constexpr int kCandidates = 8;

std::string cublasString(cublasStatus_t st) {
  return std::string(cublasLtGetStatusName(st)) + ": " +
         cublasLtGetStatusString(st);
}

Status cublasStatus(cublasStatus_t st, const std::string &what) {
  if (st == CUBLAS_STATUS_SUCCESS)
    return okStatus();
  return errorStatus(what + ": " + cublasString(st));
}

Result<cudaDataType_t> cudaTypeOf(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return CUDA_R_32F;
  case DType::F16:
    return CUDA_R_16F;
  case DType::BF16:
    return CUDA_R_16BF;
  default:
    return errorStatus("GEMM on the GPU takes f32, f16 or bf16, not " +
                       dtypeName(dtype));
  }
}

/// The largest power of two (up to 256) that divides the address.
uint32_t alignmentOf(const void *p) {
  auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a)
    a /= 2;
  return a;
}

/// One cuBLASLt problem: descriptors of op(B^T) op(A^T) for a batch of
/// `count` matrices at fixed strides.
struct Problem {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};

  ~Problem() {
    if (d)
      cublasLtMatrixLayoutDestroy(d);
    if (b)
      cublasLtMatrixLayoutDestroy(b);
    if (a)
      cublasLtMatrixLayoutDestroy(a);
    if (desc)
      cublasLtMatmulDescDestroy(desc);
  }
};

Status setBatch(cublasLtMatrixLayout_t layout, int32_t count, int64_t stride) {
  if (count <= 1)
    return okStatus();
  if (Status s = cublasStatus(cublasLtMatrixLayoutSetAttribute(
                                  layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                  &count, sizeof(count)),
                              "batch count");
      !s.ok())
    return s;
  return cublasStatus(cublasLtMatrixLayoutSetAttribute(
                          layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                          &stride, sizeof(stride)),
                      "batch stride");
}

/// The algorithms chosen, by problem key, shared by every rank of the
/// process (the same GPU type).
std::mutex cacheMutex;
std::map<std::string, cublasLtMatmulAlgo_t> algoCache;

class GemmStep final : public BoundStep {
public:
  GemmStep(cublasLtHandle_t handle, void *workspace, uint64_t workspaceSize)
      : handle(handle), workspace(workspace), workspaceSize(workspaceSize) {}

  Status launch(cudaStream_t stream) override {
    // beta = 0: C is not read (cuBLASLt still wants a pointer: the output).
    float alpha = 1.0f, beta = residual ? 1.0f : 0.0f;
    for (const Call &c : calls) {
      cublasStatus_t st = cublasLtMatmul(
          handle, problem.desc, &alpha, c.b, problem.a, c.a, problem.b, &beta,
          residual ? c.residual : c.out, problem.d, c.out, problem.d,
          &problem.algo, workspace, workspaceSize, stream);
      if (st != CUBLAS_STATUS_SUCCESS)
        return errorStatus("cublasLtMatmul: " + cublasString(st));
    }
    return okStatus();
  }

  /// One matmul call: the row-major a, b, output and residual (null
  /// without one) of a batch (or of all).
  struct Call {
    const void *a, *b;
    void *out;
    const void *residual;
  };
  Problem problem;
  std::vector<Call> calls;
  bool residual = false;

private:
  cublasLtHandle_t handle;
  void *workspace;
  uint64_t workspaceSize;
};

/// The skinny GEMM (kernels::launchGemv); its split-k partial sums live in
/// the context's workspace, which no other GEMM uses meanwhile.
class GemvStep final : public BoundStep {
public:
  explicit GemvStep(const kernels::GemvParams &params) : params(params) {}
  Status launch(cudaStream_t stream) override {
    return cudaStatus(kernels::launchGemv(params, stream), "the skinny GEMM");
  }

private:
  kernels::GemvParams params;
};

/// The skinny GEMM takes the products of a few rows of 16-bit operands
/// (up to kGemvMaxRows) unless WEFT_GEMV=0
/// gives them all to cuBLASLt (docs/perf.md compares the two).
bool gemvEnabled() {
  const char *v = std::getenv("WEFT_GEMV");
  return !v || std::string(v) != "0";
}

/// Device operands as the step checks take them (the pointers are not
/// dereferenced).
struct HostView {
  HostView(std::span<const DeviceTensor> inputs,
           std::span<const DeviceTensor> outputs) {
    for (const DeviceTensor &t : inputs)
      ins.push_back({t.dtype, t.shape, static_cast<const std::byte *>(t.data)});
    for (const DeviceTensor &t : outputs)
      outs.push_back({t.dtype, t.shape, static_cast<std::byte *>(t.data)});
  }
  std::vector<InTensor> ins;
  std::vector<OutTensor> outs;
};

bool aligned16(const void *p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

/// The bias and residual of GEMM step `step` into `seg` (whose n is set).
Status epilogueOperands(kernels::GemvSegment &seg, const artifact::Step &step,
                        std::span<const DeviceTensor> inputs) {
  if (step.gemm().has_bias()) {
    if (inputs[2].numElements() != seg.n)
      return errorStatus(
          "the GPU GEMM takes a bias of n = " + std::to_string(seg.n) +
          " values, has " + shapeString(inputs[2].shape));
    seg.bias = inputs[2].data;
  }
  if (step.gemm().has_residual())
    seg.residual = inputs.back().data;
  return okStatus();
}

DType dtypeOf(const kernels::GemvParams &p) {
  return static_cast<DType>(p.type);
}

int64_t product(const Shape &s) {
  return std::accumulate(s.begin(), s.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

bool allOnes(const Shape &s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d == 1; });
}

/// Shape `s` left-padded with ones to `rank` dims.
Shape padded(const Shape &s, size_t rank) {
  Shape out(rank - s.size(), 1);
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

} // namespace

Result<std::unique_ptr<GemmContext>> GemmContext::create(bool tune) {
  std::unique_ptr<GemmContext> ctx(new GemmContext());
  ctx->tune = tune;
  cublasLtHandle_t handle;
  if (Status s = cublasStatus(cublasLtCreate(&handle), "cublasLtCreate");
      !s.ok())
    return s;
  ctx->handle = handle;
  if (Status s = cudaStatus(cudaMalloc(&ctx->workspace, kWorkspaceBytes),
                            "allocating the GEMM workspace");
      !s.ok())
    return s;
  ctx->workspaceSize = kWorkspaceBytes;
  return ctx;
}

GemmContext::~GemmContext() {
  if (workspace)
    cudaFree(workspace);
  if (handle)
    cublasLtDestroy(static_cast<cublasLtHandle_t>(handle));
}

namespace {

/// Whether skinny GEMMs launch as programmatic dependents (Hopper and
/// later; WEFT_PDL=0 turns it off).
Result<bool> dependentLaunches() {
  const char *v = std::getenv("WEFT_PDL");
  if (v && std::string(v) == "0")
    return false;
  int device = 0, major = 0;
  if (Status s = cudaStatus(cudaGetDevice(&device), "finding the GPU"); !s.ok())
    return s;
  if (Status s =
          cudaStatus(cudaDeviceGetAttribute(
                         &major, cudaDevAttrComputeCapabilityMajor, device),
                     "reading the compute capability");
      !s.ok())
    return s;
  return major >= 9;
}

} // namespace

Result<int> GemmContext::multiprocessors() {
  int device = 0, sms = 0;
  if (Status s = cudaStatus(cudaGetDevice(&device), "finding the GPU"); !s.ok())
    return s;
  if (Status s = cudaStatus(
          cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
          "reading the multiprocessor count");
      !s.ok())
    return s;
  return sms;
}

Result<std::unique_ptr<BoundStep>> GemmContext::bindGemv(
    const artifact::Step &step, std::span<const DeviceTensor> inputs,
    std::span<const DeviceTensor> outputs, int64_t m, int64_t n, int64_t k) {
  kernels::GemvParams p;
  p.a = inputs[0].data;
  p.seg[0].w = inputs[1].data;
  p.seg[0].out = outputs[0].data;
  p.seg[0].n = n;
  p.type = static_cast<int>(inputs[0].dtype);
  p.outType = static_cast<int>(outputs[0].dtype);
  p.m = m;
  p.k = k;
  p.gelu = step.gemm().gelu();
  if (Status s = epilogueOperands(p.seg[0], step, inputs); !s.ok())
    return s;
  auto sms = multiprocessors();
  if (!sms.ok())
    return sms.status();
  if (kernels::planGemv(p, *sms, workspaceSize / sizeof(float)))
    p.partials = static_cast<float *>(workspace);
  auto dependent = dependentLaunches();
  if (!dependent.ok())
    return dependent.status();
  p.dependent = *dependent;
  return std::unique_ptr<BoundStep>(new GemvStep(p));
}

std::optional<GemmContext::GemvProblem>
GemmContext::gemvProblem(const artifact::Step &step,
                         std::span<const DeviceTensor> inputs,
                         std::span<const DeviceTensor> outputs) {
  if (step.kind() != artifact::Step::GEMM || inputs.size() < 2 ||
      outputs.size() != 1 || !gemvEnabled())
    return std::nullopt;
  HostView view(inputs, outputs);
  steps::StepArgs args{step, view.ins, view.outs};
  if (!steps::checkStep(args).ok())
    return std::nullopt;
  auto shape = steps::gemmShape(args);
  if (!shape.ok())
    return std::nullopt;
  const steps::GemmShape &g = *shape;
  DType dtype = inputs[0].dtype, outType = outputs[0].dtype;
  if (dtype != DType::BF16 && dtype != DType::F16)
    return std::nullopt;
  bool widened = outType == DType::F32 && !step.gemm().has_bias() &&
                 !step.gemm().has_residual() && !step.gemm().gelu();
  for (const DeviceTensor &t : inputs)
    if (t.dtype != dtype)
      return std::nullopt;
  if (outType != dtype && !widened)
    return std::nullopt;
  // The batch folds into m only where b is one matrix for all of it.
  Shape bb = padded(g.batchB, g.batch.size());
  if (!allOnes(bb) || g.transA || !g.transB)
    return std::nullopt;
  int64_t m = g.m * product(padded(g.batchA, g.batch.size()));
  if (m < 1 || m > kernels::kGemvMaxRows)
    return std::nullopt;
  return GemvProblem{m, g.n, g.k};
}

bool GemmContext::groupable(const artifact::Step &a,
                            std::span<const DeviceTensor> aInputs,
                            std::span<const DeviceTensor> aOutputs,
                            const artifact::Step &b,
                            std::span<const DeviceTensor> bInputs,
                            std::span<const DeviceTensor> bOutputs) {
  auto pa = gemvProblem(a, aInputs, aOutputs);
  auto pb = gemvProblem(b, bInputs, bOutputs);
  auto fits = [](const artifact::Step &step, const GemvProblem &p,
                 std::span<const DeviceTensor> ins,
                 std::span<const DeviceTensor> outs) {
    return !step.gemm().gelu() && p.k % 8 == 0 &&
           outs[0].dtype == ins[0].dtype && aligned16(ins[0].data) &&
           aligned16(ins[1].data);
  };
  return pa && pb && fits(a, *pa, aInputs, aOutputs) &&
         fits(b, *pb, bInputs, bOutputs) && pa->m == pb->m && pa->k == pb->k &&
         aInputs[0].data == bInputs[0].data &&
         aInputs[0].dtype == bInputs[0].dtype;
}

bool GemmContext::normable(const artifact::Step &norm,
                           std::span<const DeviceTensor> normInputs,
                           std::span<const DeviceTensor> normOutputs,
                           const artifact::Step &member,
                           std::span<const DeviceTensor> memberInputs,
                           std::span<const DeviceTensor> memberOutputs) {
  auto p = gemvProblem(member, memberInputs, memberOutputs);
  if (!p || norm.kind() != artifact::Step::RMS_NORM || norm.norm().has_bias() ||
      normInputs.size() != 2 || normOutputs.size() != 1)
    return false;
  const DeviceTensor &x = normInputs[0], &scale = normInputs[1],
                     &out = normOutputs[0];
  int64_t rank = x.rank(), axis = norm.norm().axis();
  if (axis < 0)
    axis += rank;
  return rank >= 1 && axis == rank - 1 && x.dtype == out.dtype &&
         x.dtype == memberInputs[0].dtype && scale.dtype == x.dtype &&
         x.shape == out.shape && x.shape.back() == p->k &&
         scale.numElements() == p->k && x.numElements() == p->m * p->k &&
         out.data == memberInputs[0].data && p->k % 8 == 0 &&
         aligned16(x.data) && aligned16(scale.data) &&
         p->m * p->k * 2 <= kernels::kGemvNormMaxBytes;
}

Result<std::unique_ptr<BoundStep>>
GemmContext::bindGemvGroup(std::span<const GemvMember> members,
                           const DeviceTensor *swigluOut,
                           const GemvNorm *norm) {
  if (members.empty() ||
      members.size() > static_cast<size_t>(kernels::kGemvMaxSegments) ||
      (swigluOut && members.size() != 2))
    return errorStatus("a grouped skinny GEMM takes 1 to " +
                       std::to_string(kernels::kGemvMaxSegments) +
                       " steps (2 for a gated pair)");
  const GemvMember &first = members[0];
  auto problem = gemvProblem(*first.step, first.inputs, first.outputs);
  kernels::GemvParams p;
  for (const GemvMember &mem : members)
    if (!problem || !groupable(*first.step, first.inputs, first.outputs,
                               *mem.step, mem.inputs, mem.outputs))
      return errorStatus("step '" + mem.step->name() +
                         "' cannot join the skinny GEMM of step '" +
                         first.step->name() + "'");
  p.a = first.inputs[0].data;
  p.type = p.outType = static_cast<int>(first.inputs[0].dtype);
  p.m = problem->m;
  p.k = problem->k;
  p.segments = static_cast<int>(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    const GemvMember &mem = members[i];
    kernels::GemvSegment &seg = p.seg[i];
    seg.w = mem.inputs[1].data;
    seg.out = mem.outputs[0].data;
    seg.n = mem.outputs[0].shape.back();
    if (Status s = epilogueOperands(seg, *mem.step, mem.inputs); !s.ok())
      return s;
  }
  if (swigluOut) {
    if (p.seg[0].n != p.seg[1].n || p.seg[0].bias || p.seg[1].bias ||
        p.seg[0].residual || p.seg[1].residual ||
        swigluOut->shape != members[0].outputs[0].shape ||
        swigluOut->dtype != members[0].outputs[0].dtype)
      return errorStatus("a gated pair needs two projections of one shape, "
                         "without bias or residual, and an output of it");
    p.swiglu = true;
    p.seg[0].out = swigluOut->data;
  }
  if (norm) {
    if (norm->scale.numElements() != p.k ||
        norm->x.numElements() != p.m * p.k || norm->x.dtype != dtypeOf(p) ||
        norm->scale.dtype != dtypeOf(p) || !aligned16(norm->x.data) ||
        !aligned16(norm->scale.data) ||
        p.m * p.k * 2 > kernels::kGemvNormMaxBytes)
      return errorStatus("a grouped skinny GEMM normalizes an input of its "
                         "activations' shape and dtype with a scale of k "
                         "values");
    p.normX = norm->x.data;
    p.normW = norm->scale.data;
    p.normEps = norm->epsilon;
  }
  auto sms = multiprocessors();
  if (!sms.ok())
    return sms.status();
  if (kernels::planGemv(p, *sms, 0))
    return errorStatus("a grouped skinny GEMM cannot split k");
  if (Status s = cudaStatus(kernels::prepareGemv(p),
                            "allowing the skinny GEMM's shared memory");
      !s.ok())
    return s;
  auto dependent = dependentLaunches();
  if (!dependent.ok())
    return dependent.status();
  p.dependent = *dependent;
  return std::unique_ptr<BoundStep>(new GemvStep(p));
}

Result<std::unique_ptr<BoundStep>>
GemmContext::bind(const artifact::Step &step,
                  std::span<const DeviceTensor> inputs,
                  std::span<const DeviceTensor> outputs, cudaStream_t stream) {
  HostView view(inputs, outputs);
  steps::StepArgs args{step, view.ins, view.outs};
  if (Status s = steps::checkStep(args); !s.ok())
    return s;
  auto shape = steps::gemmShape(args);
  if (!shape.ok())
    return shape.status();
  const steps::GemmShape &g = *shape;
  // One dtype throughout; or f16 / bf16 operands with the f32 accumulator
  // stored unrounded (an LM head's f32 logits), without a bias, residual
  // or GELU.
  DType dtype = inputs[0].dtype, outType = outputs[0].dtype;
  bool bias = step.gemm().has_bias();
  bool residual = step.gemm().has_residual();
  // checkStep refused it with a residual (cuBLASLt would apply it to the
  // sum).
  bool gelu = step.gemm().gelu();
  bool widened = outType == DType::F32 &&
                 (dtype == DType::BF16 || dtype == DType::F16) && !bias &&
                 !residual && !gelu;
  for (const DeviceTensor &t : inputs)
    if (t.dtype != dtype || (outType != dtype && !widened))
      return errorStatus("GEMM on the GPU needs one dtype (or f16/bf16 "
                         "operands, an f32 output and no bias, residual or "
                         "gelu), has " +
                         dtypeName(t.dtype) + " and " + dtypeName(outType));
  auto type = cudaTypeOf(dtype);
  if (!type.ok())
    return type.status();
  auto dType = cudaTypeOf(outType);
  if (!dType.ok())
    return dType.status();
  int64_t m = g.m, n = g.n, k = g.k, esize = dtypeSize(dtype);

  // How the batch maps onto cuBLASLt: one product with the batch folded
  // into m (b shared, a not transposed), a strided batch (equal or
  // broadcast batch dims), or one call per matrix.
  Shape batch = g.batch, ba = padded(g.batchA, batch.size()),
        bb = padded(g.batchB, batch.size());
  int64_t count = product(batch);
  int64_t strideA = 0, strideB = 0;
  bool perMatrix = false;
  if (allOnes(bb) && !g.transA) {
    m *= product(ba);
    count = 1;
  } else if ((ba == batch || allOnes(ba)) && (bb == batch || allOnes(bb))) {
    strideA = allOnes(ba) ? 0 : m * k;
    strideB = allOnes(bb) ? 0 : k * n;
  } else {
    perMatrix = true;
  }
  if (auto skinny = gemvProblem(step, inputs, outputs))
    return bindGemv(step, inputs, outputs, skinny->m, skinny->n, skinny->k);
  int32_t batchCount = perMatrix ? 1 : static_cast<int32_t>(count);
  if (count > INT32_MAX || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
    return errorStatus("a GEMM dim exceeds cuBLASLt's int32 limit");

  auto gemm = std::make_unique<GemmStep>(static_cast<cublasLtHandle_t>(handle),
                                         workspace, workspaceSize);
  gemm->residual = residual;
  Problem &p = gemm->problem;
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  if (Status s = cublasStatus(cublasLtMatmulDescCreate(&p.desc, compute, scale),
                              "matmul descriptor");
      !s.ok())
    return s;
  // cuBLASLt's A is our b, its B our a.
  cublasOperation_t opA = g.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = g.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA,
                                 sizeof(opA));
  cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB,
                                 sizeof(opB));
  if (bias || gelu) {
    cublasLtEpilogue_t epilogue = !gelu  ? CUBLASLT_EPILOGUE_BIAS
                                  : bias ? CUBLASLT_EPILOGUE_GELU_BIAS
                                         : CUBLASLT_EPILOGUE_GELU;
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                   &epilogue, sizeof(epilogue));
  }
  if (bias) {
    const void *ptr = inputs[2].data;
    if (inputs[2].numElements() != n)
      return errorStatus(
          "the GPU GEMM takes a bias of n = " + std::to_string(n) +
          " values, has " + shapeString(inputs[2].shape));
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                   &ptr, sizeof(ptr));
  }
  // Column-major views: b as [n, k] (or [k, n] transposed), a as [k, m].
  uint64_t aRows = g.transB ? k : n, aCols = g.transB ? n : k;
  uint64_t bRows = g.transA ? m : k, bCols = g.transA ? k : m;
  if (Status s = cublasStatus(
          cublasLtMatrixLayoutCreate(&p.a, *type, aRows, aCols, aRows),
          "layout of b");
      !s.ok())
    return s;
  if (Status s = cublasStatus(
          cublasLtMatrixLayoutCreate(&p.b, *type, bRows, bCols, bRows),
          "layout of a");
      !s.ok())
    return s;
  if (Status s = cublasStatus(cublasLtMatrixLayoutCreate(&p.d, *dType, n, m, n),
                              "layout of the output");
      !s.ok())
    return s;
  for (auto [layout, stride] :
       {std::pair{p.a, strideB}, {p.b, strideA}, {p.d, m * n}})
    if (Status s = setBatch(layout, batchCount, stride); !s.ok())
      return s;

  // The calls: one, or one per matrix of the broadcast batch. The residual
  // (the last input, the output's shape and dtype: checked above) is
  // sliced like the output.
  auto *a = static_cast<const std::byte *>(inputs[0].data);
  auto *b = static_cast<const std::byte *>(inputs[1].data);
  auto *out = static_cast<std::byte *>(outputs[0].data);
  auto *res =
      residual ? static_cast<const std::byte *>(inputs.back().data) : nullptr;
  int64_t outMatrix = m * n * dtypeSize(outType);
  if (!perMatrix) {
    gemm->calls.push_back({a, b, out, res});
  } else {
    steps::BatchMap map(g);
    for (int64_t linear = 0; linear < count; ++linear) {
      auto [oa, ob] = map(linear);
      gemm->calls.push_back({a + oa * m * k * esize, b + ob * k * n * esize,
                             out + linear * outMatrix,
                             res ? res + linear * outMatrix : nullptr});
    }
  }

  // The algorithm: cached by problem and operand alignment.
  uint32_t alignA = 256, alignB = 256, alignC = 256, alignD = 256;
  for (const auto &c : gemm->calls) {
    alignA = std::min(alignA, alignmentOf(c.b));
    alignB = std::min(alignB, alignmentOf(c.a));
    alignC = std::min(alignC, alignmentOf(residual ? c.residual : c.out));
    alignD = std::min(alignD, alignmentOf(c.out));
  }
  std::ostringstream key;
  key << dtypeName(dtype) << "->" << dtypeName(outType) << ' ' << m << 'x' << n
      << 'x' << k << " t" << g.transA << g.transB << " b" << batchCount << ':'
      << strideA << ':' << strideB << " bias" << bias << " residual" << residual
      << " gelu" << gelu << " al" << alignA << ':' << alignB << ':' << alignC
      << ':' << alignD;
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    auto it = algoCache.find(key.str());
    if (it != algoCache.end()) {
      p.algo = it->second;
      return std::unique_ptr<BoundStep>(std::move(gemm));
    }
  }
  cublasLtMatmulPreference_t pref;
  if (Status s = cublasStatus(cublasLtMatmulPreferenceCreate(&pref),
                              "matmul preference");
      !s.ok())
    return s;
  uint64_t ws = workspaceSize;
  cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA,
      sizeof(alignA));
  cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignB,
      sizeof(alignB));
  cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alignC,
      sizeof(alignC));
  cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alignD,
      sizeof(alignD));
  cublasLtMatmulHeuristicResult_t results[kCandidates];
  int found = 0;
  // C (the residual, when there is one) has D's layout.
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      static_cast<cublasLtHandle_t>(handle), p.desc, p.a, p.b, p.d, p.d, pref,
      kCandidates, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0)
    return errorStatus("cuBLASLt has no algorithm for " + key.str() +
                       (st != CUBLAS_STATUS_SUCCESS
                            ? " (" + cublasString(st) + ")"
                            : std::string()));
  int best = 0;
  if (tune && found > 1) {
    // Time each candidate on the bound operands (a few runs each).
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    float bestMs = -1;
    for (int i = 0; i < found; ++i) {
      p.algo = results[i].algo;
      if (!gemm->launch(stream).ok()) // warm-up; some may not run
        continue;
      cudaEventRecord(start, stream);
      bool ok = true;
      for (int r = 0; r < 5 && ok; ++r)
        ok = gemm->launch(stream).ok();
      cudaEventRecord(stop, stream);
      if (cudaEventSynchronize(stop) != cudaSuccess || !ok) {
        cudaGetLastError();
        continue;
      }
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      if (bestMs < 0 || ms < bestMs) {
        bestMs = ms;
        best = i;
      }
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  p.algo = results[best].algo;
  std::lock_guard<std::mutex> lock(cacheMutex);
  algoCache.emplace(key.str(), p.algo);
  return std::unique_ptr<BoundStep>(std::move(gemm));
}

} // namespace weft::runtime::cuda
