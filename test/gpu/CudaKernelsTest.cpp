// The CUDA library kernels against the CPU reference kernels: for each step
// kind a sweep of shapes, dtypes and attributes on fresh random inputs,
// compared by relative error (float results) or bytes (moved data and
// integers). Outputs are poisoned before each of two launches with
// different patterns, so an element a kernel never writes fails.
//
// Each test runs its cases in a child process (the parent never touches
// CUDA): a kernel that faults or hangs fails its own test, not the rest.
// WEFT_CUDA_TEST_NO_FORK=1 runs in-process (for debuggers, sanitizers).
// Prints one line per case: PASS or FAIL, the error and the tolerance.
#include "runtime/backends/cpu/CpuSupport.h"
#include "runtime/backends/cuda/CudaGemm.h"
#include "runtime/backends/cuda/CudaStep.h"
#include "test/unit/RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace weft::runtime::test {
namespace {

using artifact::Step;

//===----------------------------------------------------------------------===//
// Cases
//===----------------------------------------------------------------------===//

enum class Fill {
  Normal,  // N(0, 1)
  Uniform, // [lo, hi)
  Index,   // integers in [lo, hi)
  Mask,    // N(0, 1), -inf with probability `lo` percent
};

struct Input {
  DType dtype;
  Shape shape;
  Fill fill = Fill::Normal;
  int64_t lo = -1, hi = 1;
};

struct Case {
  std::string name;
  Step step;
  std::vector<Input> inputs;
  std::vector<std::pair<DType, Shape>> outputs;
  double tol = 0; // 0: bytes must match
};

double tolFor(DType dtype, double f32Tol = 1e-5) {
  switch (dtype) {
  case DType::F16:
    return 2e-3;
  case DType::BF16:
    return 1e-2;
  default:
    return f32Tol;
  }
}

std::string dn(DType d) { return dtypeName(d); }

HostTensor makeInput(const Input &in, std::mt19937_64 &rng) {
  HostTensor t{in.dtype, in.shape, {}};
  int64_t n = numElements(in.shape);
  t.bytes.resize(n * dtypeSize(in.dtype));
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> unit;
  for (int64_t i = 0; i < n; ++i) {
    switch (in.fill) {
    case Fill::Normal:
      cpu::storeDouble(in.dtype, t.bytes.data(), i, normal(rng));
      break;
    case Fill::Uniform:
      cpu::storeDouble(in.dtype, t.bytes.data(), i,
                       in.lo + (in.hi - in.lo) * unit(rng));
      break;
    case Fill::Index:
      cpu::storeInt(in.dtype, t.bytes.data(), i,
                    in.lo +
                        static_cast<int64_t>(rng() % uint64_t(in.hi - in.lo)));
      break;
    case Fill::Mask:
      cpu::storeDouble(in.dtype, t.bytes.data(), i,
                       unit(rng) * 100 < in.lo ? -INFINITY : normal(rng));
      break;
    }
  }
  return t;
}

//===----------------------------------------------------------------------===//
// Running a case
//===----------------------------------------------------------------------===//

#define CHECK_CUDA(expr)                                                       \
  do {                                                                         \
    cudaError_t err_ = (expr);                                                 \
    if (err_ != cudaSuccess) {                                                 \
      std::printf("FAIL %s: %s: %s\n", c.name.c_str(), #expr,                  \
                  cuda::cudaErrorString(err_).c_str());                        \
      return false;                                                            \
    }                                                                          \
  } while (0)

/// Device buffers freed on scope exit.
struct DeviceBuffers {
  std::vector<void *> ptrs;
  ~DeviceBuffers() {
    for (void *p : ptrs)
      cudaFree(p);
  }
};

/// ‖a − b‖ / ‖b‖ over float elements; NaN in `a` where `b` is not NaN
/// (or the reverse) gives infinity.
double relError(const HostTensor &a, const HostTensor &b) {
  int64_t n = numElements(a.shape);
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    double x = cpu::loadDouble(a.dtype, a.bytes.data(), i);
    double y = cpu::loadDouble(b.dtype, b.bytes.data(), i);
    if (std::isnan(x) || std::isnan(y)) {
      if (std::isnan(x) != std::isnan(y))
        return INFINITY;
      continue;
    }
    diff += (x - y) * (x - y);
    ref += y * y;
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

/// The first differing element of two tensors, or -1.
int64_t firstMismatch(const HostTensor &a, const HostTensor &b) {
  size_t size = dtypeSize(a.dtype);
  for (size_t i = 0; i < a.bytes.size(); i += size)
    if (std::memcmp(a.bytes.data() + i, b.bytes.data() + i, size) != 0)
      return static_cast<int64_t>(i / size);
  return -1;
}

bool runCase(const Case &c, ThreadPool &pool, std::mt19937_64 &rng,
             cudaStream_t stream) {
  std::vector<HostTensor> inputs;
  for (const Input &in : c.inputs)
    inputs.push_back(makeInput(in, rng));

  // Reference.
  std::vector<InTensor> inViews;
  for (const HostTensor &t : inputs)
    inViews.push_back(t.view());
  std::vector<HostTensor> refs;
  for (auto &[dtype, shape] : c.outputs)
    refs.push_back(HostTensor{
        dtype, shape,
        std::vector<std::byte>(numElements(shape) * dtypeSize(dtype))});
  std::vector<OutTensor> refViews;
  for (HostTensor &t : refs)
    refViews.push_back(OutTensor{t.dtype, t.shape, t.bytes.data()});
  if (Status s = cpu::runStep(cpu::StepArgs{c.step, inViews, refViews, &pool});
      !s.ok()) {
    std::printf("FAIL %s: the CPU reference refused: %s\n", c.name.c_str(),
                s.message().c_str());
    return false;
  }

  // Device operands.
  DeviceBuffers buffers;
  std::vector<cuda::DeviceTensor> din, dout;
  for (const HostTensor &t : inputs) {
    void *p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(t.bytes.size(), 16)));
    buffers.ptrs.push_back(p);
    CHECK_CUDA(
        cudaMemcpy(p, t.bytes.data(), t.bytes.size(), cudaMemcpyHostToDevice));
    din.push_back({t.dtype, t.shape, p});
  }
  for (const HostTensor &t : refs) {
    void *p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(t.bytes.size(), 16)));
    buffers.ptrs.push_back(p);
    dout.push_back({t.dtype, t.shape, p});
  }
  // GEMM is the executor's own step (cuBLASLt); the rest are library steps.
  static std::unique_ptr<cuda::GemmContext> gemm;
  if (c.step.kind() == Step::GEMM && !gemm) {
    auto made = cuda::GemmContext::create(/*tune=*/true);
    if (!made.ok()) {
      std::printf("FAIL %s: cuBLASLt: %s\n", c.name.c_str(),
                  made.message().c_str());
      return false;
    }
    gemm = std::move(*made);
  }
  auto bound = c.step.kind() == Step::GEMM
                   ? gemm->bind(c.step, din, dout, stream)
                   : cuda::bindLibraryStep(c.step, din, dout);
  if (!bound.ok()) {
    std::printf("FAIL %s: bind refused: %s\n", c.name.c_str(),
                bound.message().c_str());
    return false;
  }

  bool ok = true;
  std::string detail;
  float ms = 0;
  for (int poison : {0xFF, 0x5A}) {
    for (const cuda::DeviceTensor &t : dout)
      CHECK_CUDA(cudaMemsetAsync(t.data, poison, t.bytes(), stream));
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventRecord(start, stream));
    if (Status s = (*bound)->launch(stream); !s.ok()) {
      std::printf("FAIL %s: launch: %s\n", c.name.c_str(), s.message().c_str());
      return false;
    }
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    for (size_t o = 0; o < refs.size(); ++o) {
      HostTensor got = refs[o];
      CHECK_CUDA(cudaMemcpy(got.bytes.data(), dout[o].data, got.bytes.size(),
                            cudaMemcpyDeviceToHost));
      char buf[256];
      if (c.tol > 0) {
        double err = relError(got, refs[o]);
        bool pass = err <= c.tol; // NaN and infinity fail
        std::snprintf(buf, sizeof buf, "rel %.2e (tol %.0e)", err, c.tol);
        if (!pass) {
          ok = false;
          int64_t i = firstMismatch(got, refs[o]);
          if (i >= 0)
            std::snprintf(buf + std::strlen(buf), sizeof buf - std::strlen(buf),
                          "; element %lld: %g vs %g (poison 0x%X)",
                          static_cast<long long>(i),
                          cpu::loadDouble(got.dtype, got.bytes.data(), i),
                          cpu::loadDouble(got.dtype, refs[o].bytes.data(), i),
                          poison);
        }
      } else {
        int64_t i = firstMismatch(got, refs[o]);
        if (i >= 0) {
          ok = false;
          std::snprintf(buf, sizeof buf,
                        "element %lld of output %zu differs (poison 0x%X)",
                        static_cast<long long>(i), o, poison);
        } else {
          std::snprintf(buf, sizeof buf, "exact");
        }
      }
      detail = buf;
      if (!ok)
        break;
    }
    if (!ok)
      break;
  }
  std::printf("%s %s: %s, %.3f ms\n", ok ? "PASS" : "FAIL", c.name.c_str(),
              detail.c_str(), ms);
  std::fflush(stdout);
  return ok;
}

/// Runs the cases; the number that failed.
int runCases(const std::vector<Case> &cases) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device\n");
    return -1;
  }
  ThreadPool pool;
  std::mt19937_64 rng(0x5eed);
  cudaStream_t stream;
  if (cudaStreamCreate(&stream) != cudaSuccess)
    return static_cast<int>(cases.size());
  int failures = 0;
  for (const Case &c : cases)
    failures += runCase(c, pool, rng, stream) ? 0 : 1;
  std::printf("%d of %zu cases failed\n", failures, cases.size());
  std::fflush(stdout);
  return failures;
}

/// Runs `body` (returning failures, -1 for no device) in a child process
/// with a time limit, and reports the outcome through gtest.
void isolated(const std::function<int()> &body, unsigned seconds = 600) {
  if (std::getenv("WEFT_CUDA_TEST_NO_FORK")) {
    int failures = body();
    if (failures < 0)
      GTEST_SKIP() << "no CUDA device";
    EXPECT_EQ(failures, 0);
    return;
  }
  std::fflush(stdout);
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) {
    alarm(seconds);
    int failures = body();
    std::fflush(stdout);
    _exit(failures < 0 ? 254 : std::min(failures, 250));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) {
    ADD_FAILURE() << "the cases' process died of signal " << WTERMSIG(status)
                  << (WTERMSIG(status) == SIGALRM ? " (time limit)" : "");
    return;
  }
  int code = WEXITSTATUS(status);
  if (code == 254)
    GTEST_SKIP() << "no CUDA device";
  EXPECT_EQ(code, 0) << code << " cases failed (see FAIL lines above)";
}

void runIsolated(const std::function<std::vector<Case>()> &make) {
  isolated([&] { return runCases(make()); });
}

Step step(Step::Kind kind,
          std::initializer_list<std::pair<const char *, int64_t>> ints = {},
          std::initializer_list<std::pair<const char *, double>> floats = {},
          std::initializer_list<std::pair<const char *, Shape>> lists = {}) {
  return makeStep(kind, ints, floats, lists);
}

const DType kFloats[] = {DType::F32, DType::F16, DType::BF16};

//===----------------------------------------------------------------------===//
// ATTENTION
//===----------------------------------------------------------------------===//

struct AttnShape {
  int64_t b, hq, hkv, s, t, d;
};

std::vector<Case> attentionCases() {
  std::vector<Case> cases;
  const AttnShape shapes[] = {
      {1, 32, 8, 1, 512, 128},   // decode against a long cache
      {3, 32, 8, 17, 17, 64},    // short, odd length
      {1, 32, 8, 512, 512, 128}, //
      {3, 32, 8, 512, 512, 64},  //
      {1, 32, 8, 2048, 2048, 128}, {1, 32, 8, 2048, 2048, 64},
      {2, 32, 8, 300, 300, 64},  // 4-warp blocks at d64 (small grids: 2 warps)
      {2, 32, 8, 300, 300, 128}, //
      {2, 4, 4, 17, 40, 64},     // S < T: causal rows see T - S extra keys
      {2, 4, 2, 40, 17, 128},    // S > T: the first causal rows see nothing
      {1, 2, 1, 100, 130, 96},   // other head dim: row kernel
  };
  for (DType dt : kFloats) {
    for (const AttnShape &a : shapes) {
      for (int causal = 0; causal < 2; ++causal) {
        for (int mask = 0; mask < 2; ++mask) {
          // The largest shapes once per dtype with a mask (time).
          if (mask && a.s == 2048 && causal)
            continue;
          Case c;
          double scale = 1.0 / std::sqrt(double(a.d));
          c.step =
              step(Step::ATTENTION, {{"causal", causal}, {"has_mask", mask}},
                   {{"scale", scale}});
          c.inputs = {{dt, {a.b, a.hq, a.s, a.d}},
                      {dt, {a.b, a.hkv, a.t, a.d}},
                      {dt, {a.b, a.hkv, a.t, a.d}}};
          // Masks: a padding mask over keys per batch, or a full [S, T]
          // additive mask; both with some -inf.
          Shape maskShape =
              (a.s % 2) ? Shape{a.b, 1, 1, a.t} : Shape{1, 1, a.s, a.t};
          if (mask)
            c.inputs.push_back({DType::F32, maskShape, Fill::Mask, 10});
          c.outputs = {{dt, {a.b, a.hq, a.s, a.d}}};
          c.tol = tolFor(dt, 1e-4);
          c.name = "ATTENTION " + dn(dt) + " b" + std::to_string(a.b) + " hq" +
                   std::to_string(a.hq) + " hkv" + std::to_string(a.hkv) +
                   " s" + std::to_string(a.s) + " t" + std::to_string(a.t) +
                   " d" + std::to_string(a.d) + (causal ? " causal" : "") +
                   (mask ? " mask" + shapeString(maskShape) : "");
          cases.push_back(std::move(c));
        }
      }
    }
  }
  // A bf16 mask with f16 operands; a mask with whole rows -inf.
  {
    Case c;
    c.step = step(Step::ATTENTION, {{"causal", 1}, {"has_mask", 1}},
                  {{"scale", 0.125}});
    c.inputs = {{DType::F16, {2, 8, 70, 64}},
                {DType::F16, {2, 2, 70, 64}},
                {DType::F16, {2, 2, 70, 64}},
                {DType::BF16, {70, 70}, Fill::Mask, 10}};
    c.outputs = {{DType::F16, {2, 8, 70, 64}}};
    c.tol = 2e-3;
    c.name = "ATTENTION f16 bf16-mask[70, 70] b2 hq8 hkv2 s70 t70 d64 causal";
    cases.push_back(std::move(c));
  }
  {
    Case c;
    c.step = step(Step::ATTENTION, {{"has_mask", 1}}, {{"scale", 0.1}});
    c.inputs = {{DType::BF16, {1, 4, 64, 128}},
                {DType::BF16, {1, 4, 80, 128}},
                {DType::BF16, {1, 4, 80, 128}},
                {DType::F32, {1, 1, 64, 80}, Fill::Mask, 95}};
    c.outputs = {{DType::BF16, {1, 4, 64, 128}}};
    c.tol = 1e-2;
    c.name = "ATTENTION bf16 mostly -inf mask (rows of zeros) s64 t80 d128";
    cases.push_back(std::move(c));
  }
  // seq_major: q, k, v and out as [B, S, H, D], the projections' layout.
  const AttnShape seqMajor[] = {
      {3, 32, 8, 512, 512, 64},  // 128-row blocks (enough of them)
      {1, 32, 8, 512, 512, 128}, // 64-row blocks
      {2, 4, 2, 40, 17, 128},    // S > T
      {1, 32, 8, 1, 512, 128},   // decode
      {1, 2, 1, 100, 130, 96},   // row kernel
  };
  for (DType dt : kFloats) {
    for (const AttnShape &a : seqMajor) {
      for (int mask = 0; mask < 2; ++mask) {
        Case c;
        c.step = step(Step::ATTENTION,
                      {{"causal", 1}, {"has_mask", mask}, {"seq_major", 1}},
                      {{"scale", 1.0 / std::sqrt(double(a.d))}});
        c.inputs = {{dt, {a.b, a.s, a.hq, a.d}},
                    {dt, {a.b, a.t, a.hkv, a.d}},
                    {dt, {a.b, a.t, a.hkv, a.d}}};
        if (mask)
          c.inputs.push_back({DType::F32, {a.b, 1, 1, a.t}, Fill::Mask, 10});
        c.outputs = {{dt, {a.b, a.s, a.hq, a.d}}};
        c.tol = tolFor(dt, 1e-4);
        c.name = "ATTENTION seq_major " + dn(dt) + " b" + std::to_string(a.b) +
                 " hq" + std::to_string(a.hq) + " hkv" + std::to_string(a.hkv) +
                 " s" + std::to_string(a.s) + " t" + std::to_string(a.t) +
                 " d" + std::to_string(a.d) + " causal" + (mask ? " mask" : "");
        cases.push_back(std::move(c));
      }
    }
  }
  return cases;
}

TEST(CudaKernels, Device) {
  isolated([] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
      return -1;
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess)
      return 1;
    std::printf("device 0: %s, sm_%d%d, %d SMs, %.1f GiB\n", prop.name,
                prop.major, prop.minor, prop.multiProcessorCount,
                prop.totalGlobalMem / double(1 << 30));
    return 0;
  });
}

TEST(CudaKernels, Attention) { runIsolated(attentionCases); }

//===----------------------------------------------------------------------===//
// GEMM (cuBLASLt), with the bias, residual and GELU epilogues
//===----------------------------------------------------------------------===//

std::vector<Case> gemmCases() {
  std::vector<Case> cases;
  for (DType dt : kFloats) {
    std::string t = dn(dt);
    // f32 runs in true f32 (no TF32); the summation order still differs.
    double tol = tolFor(dt, 1e-5);
    // A linear over [batch, seq] rows (folded into m), the weight [N, K]
    // (transpose_b): without and with bias, with the residual of a
    // transformer block's o_proj / down_proj, and with the tanh GELU of
    // GPT-2's up-projection (never with a residual: refused below).
    for (int64_t bias : {0, 1})
      for (int64_t residual : {0, 1})
        for (int64_t gelu : {0, 1}) {
          if (gelu && residual)
            continue;
          Case c;
          c.name = "GEMM " + t + " linear [2, 37, 64] x [96, 64]^T" +
                   (bias ? " + bias" : "") + (residual ? " + residual" : "") +
                   (gelu ? " + gelu" : "");
          c.step = step(Step::GEMM, {{"linear", 1},
                                     {"transpose_b", 1},
                                     {"has_bias", bias},
                                     {"has_residual", residual},
                                     {"gelu", gelu}});
          c.inputs = {{dt, {2, 37, 64}}, {dt, {96, 64}}};
          if (bias)
            c.inputs.push_back({dt, {96}});
          if (residual)
            c.inputs.push_back({dt, {2, 37, 96}});
          c.outputs = {{dt, {2, 37, 96}}};
          // The epilogue's tanh may be a faster approximation than the CPU's.
          c.tol = gelu ? tolFor(dt, 1e-4) : tol;
          cases.push_back(c);
        }
    // Batched: a strided batch (equal batch dims), a transposed a, and a
    // broadcast batch issued one matrix at a time, whose residual slices
    // (5 x 7 elements apart) are not 16-byte aligned in f16 and bf16.
    struct Batched {
      const char *what;
      Shape a, b, out;
      bool transA;
    };
    const Batched batched[] = {
        {"strided [3, 17, 32] x [3, 32, 24]",
         {3, 17, 32},
         {3, 32, 24},
         {3, 17, 24},
         false},
        {"transposed a [4, 40, 9] x [4, 40, 16]",
         {4, 40, 9},
         {4, 40, 16},
         {4, 9, 16},
         true},
        {"broadcast [2, 1, 5, 8] x [1, 3, 8, 7]",
         {2, 1, 5, 8},
         {1, 3, 8, 7},
         {2, 3, 5, 7},
         false},
    };
    for (const Batched &bt : batched)
      for (int64_t residual : {0, 1}) {
        Case c;
        c.name = "GEMM " + t + " " + bt.what + (residual ? " + residual" : "");
        c.step = step(Step::GEMM,
                      {{"transpose_a", bt.transA}, {"has_residual", residual}});
        c.inputs = {{dt, bt.a}, {dt, bt.b}};
        if (residual)
          c.inputs.push_back({dt, bt.out});
        c.outputs = {{dt, bt.out}};
        c.tol = tol;
        cases.push_back(c);
      }
  }
  // The LM head's widened output: bf16 operands, the f32 accumulator.
  Case c;
  c.name = "GEMM bf16 -> f32 linear [1, 9, 64] x [200, 64]^T";
  c.step = step(Step::GEMM, {{"linear", 1}, {"transpose_b", 1}});
  c.inputs = {{DType::BF16, {1, 9, 64}}, {DType::BF16, {200, 64}}};
  c.outputs = {{DType::F32, {1, 9, 200}}};
  c.tol = 1e-5;
  cases.push_back(c);
  return cases;
}

TEST(CudaKernels, Gemm) { runIsolated(gemmCases); }

/// Binds that must be refused (with the reason printed): a residual on the
/// widened f32 output (bf16 operands), a residual of another dtype, and a
/// GELU with a residual or on the widened output.
TEST(CudaKernels, GemmRefusals) {
  isolated([] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
      return -1;
    auto gemm = cuda::GemmContext::create(/*tune=*/false);
    if (!gemm.ok()) {
      std::printf("FAIL GEMM refusals: cuBLASLt: %s\n", gemm.message().c_str());
      return 1;
    }
    cudaStream_t stream;
    if (cudaStreamCreate(&stream) != cudaSuccess)
      return 1;
    void *mem = nullptr;
    if (cudaMalloc(&mem, 1 << 16) != cudaSuccess)
      return 1;
    auto *base = static_cast<std::byte *>(mem);
    cuda::DeviceTensor a{DType::BF16, {4, 8}, base};
    cuda::DeviceTensor b{DType::BF16, {8, 16}, base + 4096};
    cuda::DeviceTensor r32{DType::F32, {4, 16}, base + 8192};
    cuda::DeviceTensor r16{DType::BF16, {4, 16}, base + 12288};
    cuda::DeviceTensor out32{DType::F32, {4, 16}, base + 16384};
    cuda::DeviceTensor out16{DType::BF16, {4, 16}, base + 20480};
    Step res = step(Step::GEMM, {{"has_residual", 1}});
    Step gelu = step(Step::GEMM, {{"gelu", 1}});
    Step geluRes = step(Step::GEMM, {{"has_residual", 1}, {"gelu", 1}});
    struct Refusal {
      const char *name;
      const Step &st;
      std::vector<cuda::DeviceTensor> ins, outs;
    };
    const Refusal refusals[] = {
        {"residual on the widened f32 output", res, {a, b, r32}, {out32}},
        {"f32 residual of a bf16 output", res, {a, b, r32}, {out16}},
        {"residual in the output's memory", res, {a, b, r16}, {r16}},
        {"gelu with a residual", geluRes, {a, b, r16}, {out16}},
        {"gelu on the widened f32 output", gelu, {a, b}, {out32}},
    };
    int failures = 0;
    for (const Refusal &r : refusals) {
      auto bound = (*gemm)->bind(r.st, r.ins, r.outs, stream);
      if (bound.ok()) {
        std::printf("FAIL GEMM refuses %s: bound\n", r.name);
        ++failures;
      } else {
        std::printf("PASS GEMM refuses %s: %s\n", r.name,
                    bound.message().c_str());
      }
    }
    cudaFree(mem);
    cudaStreamDestroy(stream);
    std::fflush(stdout);
    return failures;
  });
}

//===----------------------------------------------------------------------===//
// Norms, softmax, rotary, swiglu
//===----------------------------------------------------------------------===//

TEST(CudaKernels, Norms) {
  runIsolated([] {
    std::vector<Case> cases;
    struct NormShape {
      Shape x, scale;
      int64_t axis;
    };
    const NormShape shapes[] = {
        {{4, 4096}, {4096}, -1},       {{3, 17, 64}, {64}, -1},
        {{2, 5, 1001}, {1001}, 2},     {{3, 17, 64}, {17, 64}, 1},
        {{3, 17, 64}, {3, 1, 64}, -1}, {{2, 3, 8}, {1}, 1},
        {{512, 2048}, {2048}, -1},
    };
    for (int rms = 0; rms < 2; ++rms) {
      for (DType dt : kFloats) {
        for (const NormShape &n : shapes) {
          for (int bias = 0; bias < 2 - rms; ++bias) {
            Case c;
            c.step = step(rms ? Step::RMS_NORM : Step::LAYER_NORM,
                          {{"axis", n.axis}, {"has_bias", bias}},
                          {{"epsilon", 1e-5}});
            c.inputs = {{dt, n.x}, {dt, n.scale}};
            if (bias)
              c.inputs.push_back({dt, n.scale});
            c.outputs = {{dt, n.x}};
            c.tol = tolFor(dt);
            c.name = std::string(rms ? "RMS_NORM " : "LAYER_NORM ") + dn(dt) +
                     " x" + shapeString(n.x) + " scale" + shapeString(n.scale) +
                     " axis " + std::to_string(n.axis) + (bias ? " bias" : "");
            cases.push_back(std::move(c));
          }
        }
      }
      // Mixed dtypes: bf16 input, f32 scale, f32 output.
      Case c;
      c.step = step(rms ? Step::RMS_NORM : Step::LAYER_NORM, {{"axis", -1}},
                    {{"epsilon", 1e-6}});
      c.inputs = {{DType::BF16, {8, 512}}, {DType::F32, {512}}};
      c.outputs = {{DType::F32, {8, 512}}};
      c.tol = 1e-5;
      c.name = std::string(rms ? "RMS_NORM" : "LAYER_NORM") +
               " bf16 in, f32 scale, f32 out [8, 512]";
      cases.push_back(std::move(c));
    }
    return cases;
  });
}

TEST(CudaKernels, Softmax) {
  runIsolated([] {
    std::vector<Case> cases;
    const std::pair<Shape, int64_t> shapes[] = {
        {{5, 300}, -1}, {{4, 7, 9}, 1}, {{2, 3, 4096}, 2}, {{6, 5}, 0}};
    for (DType dt : kFloats) {
      for (auto &[shape, axis] : shapes) {
        Case c;
        c.step = step(Step::SOFTMAX, {{"axis", axis}});
        c.inputs = {{dt, shape, Fill::Uniform, -8, 8}};
        c.outputs = {{dt, shape}};
        c.tol = tolFor(dt);
        c.name = "SOFTMAX " + dn(dt) + " " + shapeString(shape) + " axis " +
                 std::to_string(axis);
        cases.push_back(std::move(c));
      }
    }
    return cases;
  });
}

TEST(CudaKernels, Rotary) {
  runIsolated([] {
    std::vector<Case> cases;
    struct RotShape {
      Shape x, cs;
    };
    const RotShape shapes[] = {{{2, 4, 17, 64}, {17, 64}},
                               {{2, 4, 17, 64}, {17, 32}},
                               {{2, 4, 17, 128}, {2, 1, 17, 128}},
                               {{1, 512, 32, 128}, {1, 512, 1, 128}}};
    for (DType dt : kFloats) {
      for (const RotShape &r : shapes) {
        for (int inter = 0; inter < 2; ++inter) {
          Case c;
          c.step = step(Step::ROTARY, {{"interleaved", inter}});
          c.inputs = {{dt, r.x}, {dt, r.cs}, {dt, r.cs}};
          c.outputs = {{dt, r.x}};
          c.tol = tolFor(dt);
          c.name = "ROTARY " + dn(dt) + " x" + shapeString(r.x) + " cos/sin" +
                   shapeString(r.cs) + (inter ? " interleaved" : "");
          cases.push_back(std::move(c));
        }
      }
    }
    Case c;
    c.step = step(Step::ROTARY);
    c.inputs = {{DType::BF16, {3, 5, 64}},
                {DType::F32, {5, 64}},
                {DType::F32, {5, 64}}};
    c.outputs = {{DType::BF16, {3, 5, 64}}};
    c.tol = 1e-2;
    c.name = "ROTARY bf16 x, f32 cos/sin";
    cases.push_back(std::move(c));
    return cases;
  });
}

TEST(CudaKernels, Swiglu) {
  runIsolated([] {
    std::vector<Case> cases;
    for (DType dt : kFloats) {
      for (Shape shape : {Shape{3, 1000}, Shape{512, 8192}, Shape{7}}) {
        Case c;
        c.step = step(Step::SWIGLU);
        c.inputs = {{dt, shape, Fill::Uniform, -6, 6}, {dt, shape}};
        c.outputs = {{dt, shape}};
        c.tol = tolFor(dt);
        c.name = "SWIGLU " + dn(dt) + " " + shapeString(shape);
        cases.push_back(std::move(c));
      }
    }
    Case c;
    c.step = step(Step::SWIGLU);
    c.inputs = {{DType::BF16, {4, 100}}, {DType::F32, {4, 100}}};
    c.outputs = {{DType::F32, {4, 100}}};
    c.tol = 1e-5;
    c.name = "SWIGLU bf16 gate, f32 up and out";
    cases.push_back(std::move(c));
    return cases;
  });
}

//===----------------------------------------------------------------------===//
// Gathers
//===----------------------------------------------------------------------===//

TEST(CudaKernels, Gathers) {
  runIsolated([] {
    std::vector<Case> cases;
    auto add = [&](std::string name, Step s, std::vector<Input> in,
                   DType outType, Shape outShape) {
      cases.push_back({std::move(name),
                       std::move(s),
                       std::move(in),
                       {{outType, outShape}}});
    };
    for (DType dt : {DType::BF16, DType::F32, DType::I64, DType::U8}) {
      std::string t = dn(dt);
      add("EMBEDDING " + t + " [1000, 64] ids i64 [2, 7]",
          step(Step::EMBEDDING),
          {{dt, {1000, 64}}, {DType::I64, {2, 7}, Fill::Index, 0, 1000}}, dt,
          {2, 7, 64});
      add("EMBEDDING " + t + " [500, 24] ids i32, vocab_start 500",
          step(Step::EMBEDDING, {{"vocab_start", 500}}),
          {{dt, {500, 24}}, {DType::I32, {3, 50}, Fill::Index, 0, 1500}}, dt,
          {3, 50, 24});
      add("EMBEDDING " + t + " [100, 3] (odd rows) ids i64",
          step(Step::EMBEDDING),
          {{dt, {100, 3}}, {DType::I64, {9}, Fill::Index, 0, 100}}, dt, {9, 3});
      add("GATHER " + t + " [5, 6, 7] axis 1, negative indices",
          step(Step::GATHER, {{"axis", 1}}),
          {{dt, {5, 6, 7}}, {DType::I64, {2, 3}, Fill::Index, -6, 6}}, dt,
          {5, 2, 3, 7});
      add("GATHER " + t + " [5, 6, 7] axis 2, i32 indices",
          step(Step::GATHER, {{"axis", -1}}),
          {{dt, {5, 6, 7}}, {DType::I32, {4}, Fill::Index, 0, 7}}, dt,
          {5, 6, 4});
      add("GATHER " + t + " [5, 6] axis 0, scalar index",
          step(Step::GATHER, {{"axis", 0}}),
          {{dt, {5, 6}}, {DType::I64, {}, Fill::Index, 0, 5}}, dt, {6});
      add("GATHER_ND " + t + " [4, 5, 6] indices [3, 2]", step(Step::GATHER_ND),
          {{dt, {4, 5, 6}}, {DType::I64, {3, 2}, Fill::Index, 0, 4}}, dt,
          {3, 6});
      add("GATHER_ND " + t + " [4, 5, 6] indices [4, 2, 1] batch_dims 1",
          step(Step::GATHER_ND, {{"batch_dims", 1}}),
          {{dt, {4, 5, 6}}, {DType::I64, {4, 2, 1}, Fill::Index, -5, 5}}, dt,
          {4, 2, 6});
      add("GATHER_ELEMENTS " + t + " [4, 5] axis 1",
          step(Step::GATHER_ELEMENTS, {{"axis", 1}}),
          {{dt, {4, 5}}, {DType::I64, {4, 3}, Fill::Index, -5, 5}}, dt, {4, 3});
      add("GATHER_ELEMENTS " + t + " [3, 4, 5] axis 0",
          step(Step::GATHER_ELEMENTS, {{"axis", 0}}),
          {{dt, {3, 4, 5}}, {DType::I32, {2, 4, 3}, Fill::Index, 0, 3}}, dt,
          {2, 4, 3});
    }
    return cases;
  });
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

TEST(CudaKernels, Reduce) {
  runIsolated([] {
    std::vector<Case> cases;
    const char *names[] = {"sum", "mean", "max", "min", "prod"};
    for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F64,
                     DType::I64, DType::I32}) {
      for (int kind = 0; kind < 5; ++kind) {
        struct R {
          Shape in, axes, out;
          int keep;
        };
        const R rs[] = {{{4, 5, 6}, {1}, {4, 6}, 0},
                        {{4, 5, 6}, {0, 2}, {1, 5, 1}, 1},
                        {{3, 4096}, {1}, {3}, 0},
                        {{4, 5}, {}, {4, 5}, 0},
                        {{2, 3, 4, 5}, {0, 1, 2, 3}, {}, 0}};
        for (const R &r : rs) {
          Case c;
          c.step = step(Step::REDUCE, {{"kind", kind}, {"keepdims", r.keep}},
                        {}, {{"axes", r.axes}});
          bool isInt = !isFloatDType(dt);
          // Products of many terms stay finite near 1.
          Input in{dt, r.in, isInt ? Fill::Index : Fill::Uniform, -3, 4};
          if (kind == 4)
            in = {dt, r.in, isInt ? Fill::Index : Fill::Uniform, isInt ? -1 : 0,
                  2};
          c.inputs = {in};
          c.outputs = {{dt, r.out}};
          c.tol = isInt ? 0 : (dt == DType::F64 ? 1e-12 : tolFor(dt));
          // f16 and bf16 outputs round differently near ties; prod and mean
          // of small values are fine at these tolerances.
          c.name = std::string("REDUCE ") + names[kind] + " " + dn(dt) + " " +
                   shapeString(r.in) + " axes " + shapeString(r.axes) +
                   (r.keep ? " keepdims" : "");
          cases.push_back(std::move(c));
        }
      }
    }
    for (DType dt : {DType::F32, DType::BF16, DType::I32, DType::I64}) {
      for (int ex = 0; ex < 2; ++ex) {
        for (int rev = 0; rev < 2; ++rev) {
          for (int64_t axis : {1, -1}) {
            Case c;
            c.step =
                step(Step::CUMSUM,
                     {{"axis", axis}, {"exclusive", ex}, {"reverse", rev}});
            bool isInt = !isFloatDType(dt);
            c.inputs = {
                {dt, {4, 5, 6}, isInt ? Fill::Index : Fill::Normal, -100, 100}};
            c.outputs = {{dt, {4, 5, 6}}};
            c.tol = isInt ? 0 : tolFor(dt);
            c.name = "CUMSUM " + dn(dt) + " [4, 5, 6] axis " +
                     std::to_string(axis) + (ex ? " exclusive" : "") +
                     (rev ? " reverse" : "");
            cases.push_back(std::move(c));
          }
        }
      }
    }
    return cases;
  });
}

//===----------------------------------------------------------------------===//
// Movement
//===----------------------------------------------------------------------===//

TEST(CudaKernels, Movement) {
  runIsolated([] {
    std::vector<Case> cases;
    auto add = [&](std::string name, Step s, std::vector<Input> in,
                   DType outType, Shape outShape) {
      cases.push_back({std::move(name),
                       std::move(s),
                       std::move(in),
                       {{outType, outShape}}});
    };
    for (DType dt : {DType::BF16, DType::F32, DType::I64, DType::U8}) {
      std::string t = dn(dt);
      add("TRANSPOSE " + t + " [2, 3, 4, 5] perm [0, 2, 1, 3]",
          step(Step::TRANSPOSE, {}, {}, {{"perm", {0, 2, 1, 3}}}),
          {{dt, {2, 3, 4, 5}}}, dt, {2, 4, 3, 5});
      add("TRANSPOSE " + t + " [2, 3, 4, 5] perm [3, 2, 1, 0]",
          step(Step::TRANSPOSE, {}, {}, {{"perm", {3, 2, 1, 0}}}),
          {{dt, {2, 3, 4, 5}}}, dt, {5, 4, 3, 2});
      add("TRANSPOSE " + t + " [8, 512, 128] perm [1, 0, 2]",
          step(Step::TRANSPOSE, {}, {}, {{"perm", {1, 0, 2}}}),
          {{dt, {8, 512, 128}}}, dt, {512, 8, 128});
      add("TRANSPOSE " + t + " [1, 2, 1, 3, 1, 2, 1, 2, 1, 2] (rank 10)",
          step(Step::TRANSPOSE, {}, {},
               {{"perm", {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}}}),
          {{dt, {1, 2, 1, 3, 1, 2, 1, 2, 1, 2}}}, dt,
          {2, 1, 2, 1, 2, 1, 3, 1, 2, 1});
      add("TRANSPOSE " + t + " [4, 300, 70] perm [0, 2, 1] (tiled)",
          step(Step::TRANSPOSE, {}, {}, {{"perm", {0, 2, 1}}}),
          {{dt, {4, 300, 70}}}, dt, {4, 70, 300});
      add("TRANSPOSE " + t + " [1000, 33] perm [1, 0] (tiled)",
          step(Step::TRANSPOSE, {}, {}, {{"perm", {1, 0}}}), {{dt, {1000, 33}}},
          dt, {33, 1000});
      add("SLICE " + t + " [10, 20] 1:9:2, 2:20:3",
          step(Step::SLICE, {}, {},
               {{"starts", {1, 2}}, {"ends", {9, 20}}, {"steps", {2, 3}}}),
          {{dt, {10, 20}}}, dt, {4, 6});
      add("SLICE " + t + " [10, 20] 9:-1:-1, 19:0:-2",
          step(Step::SLICE, {}, {},
               {{"starts", {9, 19}}, {"ends", {-1, 0}}, {"steps", {-1, -2}}}),
          {{dt, {10, 20}}}, dt, {10, 10});
      add("CONCAT " + t + " [2,3,4] [2,5,4] [2,1,4] axis 1",
          step(Step::CONCAT, {{"axis", 1}}),
          {{dt, {2, 3, 4}}, {dt, {2, 5, 4}}, {dt, {2, 1, 4}}}, dt, {2, 9, 4});
      add("CONCAT " + t + " [2,3] [2,4] axis -1",
          step(Step::CONCAT, {{"axis", -1}}), {{dt, {2, 3}}, {dt, {2, 4}}}, dt,
          {2, 7});
      add("CONCAT " + t + " [1,3] [2,3] axis 0",
          step(Step::CONCAT, {{"axis", 0}}), {{dt, {1, 3}}, {dt, {2, 3}}}, dt,
          {3, 3});
      add("TILE " + t + " [2, 3] repeats [2, 3]",
          step(Step::TILE, {}, {}, {{"repeats", {2, 3}}}), {{dt, {2, 3}}}, dt,
          {4, 9});
      add("TILE " + t + " [2, 1, 4] repeats [1, 5, 2]",
          step(Step::TILE, {}, {}, {{"repeats", {1, 5, 2}}}), {{dt, {2, 1, 4}}},
          dt, {2, 5, 8});
      add("BROADCAST " + t + " [3, 1] -> [2, 3, 4]", step(Step::BROADCAST),
          {{dt, {3, 1}}}, dt, {2, 3, 4});
      add("BROADCAST " + t + " [] -> [5]", step(Step::BROADCAST), {{dt, {}}},
          dt, {5});
      add("BROADCAST " + t + " [4] -> [2, 3, 4]", step(Step::BROADCAST),
          {{dt, {4}}}, dt, {2, 3, 4});
      add("TRILU " + t + " [2, 5, 6] upper k 0",
          step(Step::TRILU, {{"upper", 1}}), {{dt, {2, 5, 6}}}, dt, {2, 5, 6});
      add("TRILU " + t + " [2, 5, 6] lower k 1",
          step(Step::TRILU, {{"upper", 0}, {"k", 1}}), {{dt, {2, 5, 6}}}, dt,
          {2, 5, 6});
      add("TRILU " + t + " [7, 4] upper k -2",
          step(Step::TRILU, {{"upper", 1}, {"k", -2}}), {{dt, {7, 4}}}, dt,
          {7, 4});
    }
    for (Case &c : cases)
      for (Input &in : c.inputs)
        if (!isFloatDType(in.dtype))
          in = {in.dtype, in.shape, Fill::Index, -100, 100};
    return cases;
  });
}

//===----------------------------------------------------------------------===//
// Attention throughput
//===----------------------------------------------------------------------===//

/// Median time of `iters` launches after a warm-up, in ms.
float medianMs(cuda::BoundStep &bound, cudaStream_t stream, int iters) {
  for (int i = 0; i < 3; ++i)
    (void)bound.launch(stream);
  std::vector<float> times;
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(start, stream);
    (void)bound.launch(stream);
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int benchAttention() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    return -1;
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  int failures = 0;
  for (int64_t b : {1, 8}) {
    for (int64_t s : {512, 2048}) {
      for (int64_t d : {64, 128}) {
        for (int causal : {1, 0}) {
          for (const char *rows : {"32", "64", "128"}) {
            // The kernel's block size, forced for the comparison.
            setenv("WEFT_ATTENTION_BLOCK_ROWS", rows, 1);
            const int64_t hq = 32, hkv = 8;
            std::vector<cuda::DeviceTensor> in = {
                {DType::BF16, {b, hq, s, d}, nullptr},
                {DType::BF16, {b, hkv, s, d}, nullptr},
                {DType::BF16, {b, hkv, s, d}, nullptr}};
            std::vector<cuda::DeviceTensor> out = {
                {DType::BF16, {b, hq, s, d}, nullptr}};
            bool allocated = true;
            for (auto *list : {&in, &out})
              for (cuda::DeviceTensor &t : *list) {
                allocated =
                    allocated && cudaMalloc(&t.data, t.bytes()) == cudaSuccess;
                if (allocated)
                  cudaMemset(t.data, 0x3c, t.bytes()); // bf16 ~0.0115: finite
              }
            Step st = step(Step::ATTENTION, {{"causal", causal}},
                           {{"scale", 1.0 / std::sqrt(double(d))}});
            auto bound = cuda::bindLibraryStep(st, in, out);
            if (!allocated || !bound.ok()) {
              std::printf("BENCH FAIL b%lld s%lld d%lld: %s\n",
                          static_cast<long long>(b), static_cast<long long>(s),
                          static_cast<long long>(d),
                          allocated ? bound.message().c_str() : "cudaMalloc");
              ++failures;
            } else {
              float ms = medianMs(**bound, stream, 20);
              cudaError_t err = cudaGetLastError();
              // FLOPs of the two matmuls; causal counts the visible half, as
              // FlashAttention and PyTorch's benchmarks do.
              double flops = 4.0 * b * hq * s * s * d * (causal ? 0.5 : 1.0);
              std::printf(
                  "BENCH attention bf16 B=%lld H=%lld KV=%lld S=%lld "
                  "D=%lld%s rows=%s: %.3f ms, %.1f TFLOP/s%s\n",
                  static_cast<long long>(b), static_cast<long long>(hq),
                  static_cast<long long>(hkv), static_cast<long long>(s),
                  static_cast<long long>(d), causal ? " causal" : "", rows, ms,
                  flops / (ms * 1e-3) / 1e12,
                  err == cudaSuccess
                      ? ""
                      : (" ERROR " + cuda::cudaErrorString(err)).c_str());
              failures += err == cudaSuccess ? 0 : 1;
            }
            for (auto *list : {&in, &out})
              for (cuda::DeviceTensor &t : *list)
                cudaFree(t.data);
            std::fflush(stdout);
          }
        }
      }
    }
  }
  return failures;
}

// Runs after the correctness tests (declaration order); also alone with
// --gtest_filter=*Bench*.
TEST(CudaKernelsBench, Attention) { isolated(benchAttention); }

} // namespace
} // namespace weft::runtime::test
