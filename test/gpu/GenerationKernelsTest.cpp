// The generation kernels of the CUDA backend against references written
// here (not the CPU backend's kernels): PAGED_ATTENTION against dense
// attention over each row's contiguous history, SAMPLE against a sort-based
// top_k / top_p and the shared Gumbel hash (and its frequencies against
// the softmax), the skinny GEMM against a host GEMM; then the executor's
// entry points, state buffers and graph replay on a small plan. Benchmarks
// (--gtest_filter=*Bench*) print the skinny GEMM's and the decode
// attention's bandwidth. Each test runs in a child process.
#include "runtime/backends/cpu/CpuSupport.h"
#include "runtime/backends/cuda/CudaExecutor.h"
#include "runtime/backends/cuda/CudaGemm.h"
#include "runtime/backends/cuda/CudaStep.h"
#include "runtime/backends/cuda/kernels/Kernels.h"
#include "runtime/steps/Sampling.h"
#include "test/unit/RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace weft::runtime::test {
namespace {

using artifact::Step;

/// Runs `body` (returning failures, -1 without a GPU) in a child process.
void isolatedRun(const std::function<int()> &body) {
  if (std::getenv("WEFT_CUDA_TEST_NO_FORK")) {
    int failures = body();
    if (failures < 0)
      GTEST_SKIP() << "no CUDA device";
    EXPECT_EQ(failures, 0);
    return;
  }
  std::fflush(stdout);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(600);
    int count = 0;
    int failures =
        cudaGetDeviceCount(&count) != cudaSuccess || count == 0 ? -1 : body();
    std::fflush(stdout);
    _exit(failures < 0 ? 254 : std::min(failures, 250));
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(WIFSIGNALED(status)) << "died of signal " << WTERMSIG(status);
  if (WEXITSTATUS(status) == 254)
    GTEST_SKIP() << "no CUDA device";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the FAIL lines above";
}

/// A host tensor and its device copy.
struct Tensor {
  DType dtype;
  Shape shape;
  std::vector<std::byte> host;
  void *dev = nullptr;

  Tensor(DType dtype, Shape shape) : dtype(dtype), shape(std::move(shape)) {
    host.resize(numElements(this->shape) * dtypeSize(dtype));
    cudaMalloc(&dev, std::max<size_t>(host.size(), 16));
  }
  Tensor(const Tensor &) = delete;
  ~Tensor() { cudaFree(dev); }
  int64_t size() const { return numElements(shape); }
  double get(int64_t i) const { return cpu::loadDouble(dtype, host.data(), i); }
  void set(int64_t i, double v) { cpu::storeDouble(dtype, host.data(), i, v); }
  void setInt(int64_t i, int64_t v) { cpu::storeInt(dtype, host.data(), i, v); }
  int64_t getInt(int64_t i) const {
    return cpu::loadInt(dtype, host.data(), i);
  }
  void upload() {
    cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice);
  }
  void download() {
    cudaMemcpy(host.data(), dev, host.size(), cudaMemcpyDeviceToHost);
  }
  void poison() { cudaMemset(dev, 0xFF, host.size()); }
  cuda::DeviceTensor device() const { return {dtype, shape, dev}; }
};

/// v rounded to `dtype`.
double rounded(DType dtype, double v) {
  std::byte buf[8];
  cpu::storeDouble(dtype, buf, 0, v);
  return cpu::loadDouble(dtype, buf, 0);
}

double relError(const std::vector<double> &got,
                const std::vector<double> &want) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]))
      return INFINITY;
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    ref += want[i] * want[i];
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

double tolFor(DType dtype) {
  return dtype == DType::BF16 ? 1e-2 : dtype == DType::F16 ? 2e-3 : 1e-5;
}

const char *dn(DType d) {
  return d == DType::BF16 ? "bf16" : d == DType::F16 ? "f16" : "f32";
}

//===----------------------------------------------------------------------===//
// PAGED_ATTENTION
//===----------------------------------------------------------------------===//

/// One row's tokens in a step: positions [first, last] are new (their k, v
/// come with the step), [0, first) are in the cache already.
struct RowSpan {
  int64_t first, last;
};

struct PagedCase {
  std::string name;
  DType dtype;
  int64_t hq, hkv, d, dv, blockSize, blocksPerSeq;
  std::vector<RowSpan> rows;
  int64_t padding = 0; // padding tokens interleaved
  bool graph = false;  // replay inside a captured CUDA graph
  /// q and k unrotated, the launch applying ROTARY (cos, sin [1, T, 1, d]
  /// of the tokens' positions), interleaved or not; the output in q's
  /// bytes with `inPlace`.
  bool rotary = false, interleaved = false, inPlace = false;
};

bool runPaged(const PagedCase &c, std::mt19937_64 &rng, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(c.rows.size());
  std::normal_distribution<double> normal;
  // The tokens: each row's new positions, padding spread among them.
  std::vector<std::pair<int64_t, int64_t>> order; // (row, position)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = c.rows[r].first; p <= c.rows[r].last; ++p)
      order.push_back({r, p});
  for (int64_t i = 0; i < c.padding; ++i)
    order.insert(order.begin() +
                     static_cast<int64_t>(rng() % (order.size() + 1)),
                 {-1, 0});
  const int64_t tokens = static_cast<int64_t>(order.size());
  // Distinct cache blocks for every row, in shuffled order, and spares.
  int64_t needed = 0;
  for (const RowSpan &s : c.rows)
    needed += s.last / c.blockSize + 1;
  int64_t blocks = needed + 3;
  std::vector<int32_t> free(blocks);
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), rng);
  Tensor table(DType::I32, {rows, c.blocksPerSeq});
  for (int64_t i = 0; i < table.size(); ++i)
    table.setInt(i, -1);
  size_t next = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b <= c.rows[r].last / c.blockSize; ++b)
      table.setInt(r * c.blocksPerSeq + b, free[next++]);

  // The rows' whole histories, rounded to the dtype.
  std::vector<std::vector<double>> histK(rows), histV(rows);
  for (int64_t r = 0; r < rows; ++r) {
    histK[r].resize((c.rows[r].last + 1) * c.hkv * c.d);
    histV[r].resize((c.rows[r].last + 1) * c.hkv * c.dv);
    for (auto *h : {&histK[r], &histV[r]})
      for (double &x : *h)
        x = rounded(c.dtype, normal(rng));
  }
  Tensor q(c.dtype, {1, tokens, c.hq, c.d}),
      k(c.dtype, {1, tokens, c.hkv, c.d}), v(c.dtype, {1, tokens, c.hkv, c.dv});
  Tensor kc(c.dtype, {blocks, c.blockSize, c.hkv, c.d}),
      vc(c.dtype, {blocks, c.blockSize, c.hkv, c.dv});
  Tensor pos(DType::I64, {1, tokens}), seq(DType::I32, {tokens});
  Tensor out(c.dtype, {1, tokens, c.hq, c.dv});
  for (int64_t i = 0; i < q.size(); ++i)
    q.set(i, normal(rng));
  for (int64_t i = 0; i < kc.size(); ++i)
    kc.set(i, normal(rng)); // unused slots hold noise
  for (int64_t i = 0; i < vc.size(); ++i)
    vc.set(i, normal(rng));
  auto slot = [&](int64_t r, int64_t p) {
    return table.getInt(r * c.blocksPerSeq + p / c.blockSize) * c.blockSize +
           p % c.blockSize;
  };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < c.rows[r].first; ++p) {
      for (int64_t e = 0; e < c.hkv * c.d; ++e)
        kc.set(slot(r, p) * c.hkv * c.d + e, histK[r][p * c.hkv * c.d + e]);
      for (int64_t e = 0; e < c.hkv * c.dv; ++e)
        vc.set(slot(r, p) * c.hkv * c.dv + e, histV[r][p * c.hkv * c.dv + e]);
    }
  // With rotary: each token's cos and sin, and its q and k before
  // rotation; the history holds the rotated k, rounded as the ROTARY
  // step's output would be.
  // Interleaved cases take f32 tables (their scalar loads in 16-bit cases).
  const DType tableType = c.interleaved ? DType::F32 : c.dtype;
  Tensor cosT(tableType, {1, tokens, 1, c.d}),
      sinT(tableType, {1, tokens, 1, c.d});
  std::vector<double> qRotated(q.size());
  auto rotateRow = [&](const std::vector<double> &x, int64_t t,
                       std::vector<double> &out) {
    const int64_t half = c.d / 2;
    for (int64_t e = 0; e < c.d; ++e) {
      double rot = c.interleaved ? (e % 2 ? x[e - 1] : -x[e + 1])
                                 : (e < half ? -x[e + half] : x[e - half]);
      out[e] = rounded(c.dtype, x[e] * cosT.get(t * c.d + e) +
                                    rot * sinT.get(t * c.d + e));
    }
  };
  if (c.rotary) {
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t e = 0; e < c.d; ++e) {
        int64_t i = c.interleaved ? e / 2 : e % (c.d / 2);
        double angle = double(order[t].second) *
                       std::pow(10000.0, -2.0 * double(i) / double(c.d));
        cosT.set(t * c.d + e, std::cos(angle));
        sinT.set(t * c.d + e, std::sin(angle));
      }
    std::vector<double> x(c.d), y(c.d);
    for (int64_t row = 0; row < tokens * c.hq; ++row) {
      for (int64_t e = 0; e < c.d; ++e)
        x[e] = q.get(row * c.d + e);
      rotateRow(x, row / c.hq, y);
      std::copy(y.begin(), y.end(), qRotated.begin() + row * c.d);
    }
  }
  for (int64_t t = 0; t < tokens; ++t) {
    auto [r, p] = order[t];
    seq.setInt(t, r);
    pos.setInt(t, p);
    if (c.rotary && r >= 0) {
      // k before rotation, and the history its rotation.
      std::vector<double> x(c.d), y(c.d);
      for (int64_t h = 0; h < c.hkv; ++h) {
        for (int64_t e = 0; e < c.d; ++e)
          x[e] = rounded(c.dtype, normal(rng));
        rotateRow(x, t, y);
        for (int64_t e = 0; e < c.d; ++e) {
          k.set((t * c.hkv + h) * c.d + e, x[e]);
          histK[r][(p * c.hkv + h) * c.d + e] = y[e];
        }
      }
    } else {
      for (int64_t e = 0; e < c.hkv * c.d; ++e)
        k.set(t * c.hkv * c.d + e,
              r >= 0 ? histK[r][p * c.hkv * c.d + e] : 9.0);
    }
    for (int64_t e = 0; e < c.hkv * c.dv; ++e)
      v.set(t * c.hkv * c.dv + e,
            r >= 0 ? histV[r][p * c.hkv * c.dv + e] : 9.0);
  }
  for (Tensor *t : {&q, &k, &v, &kc, &vc, &pos, &seq, &table, &cosT, &sinT})
    t->upload();
  out.poison();

  // The reference: dense attention over positions 0..p of the history.
  const double scale = 1.0 / std::sqrt(double(c.d));
  const int64_t group = c.hq / c.hkv;
  std::vector<double> want(out.size(), 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    auto [r, p] = order[t];
    if (r < 0)
      continue;
    for (int64_t h = 0; h < c.hq; ++h) {
      int64_t kh = h / group;
      std::vector<double> s(p + 1);
      double mx = -INFINITY;
      for (int64_t j = 0; j <= p; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < c.d; ++e)
          dot += (c.rotary ? qRotated[(t * c.hq + h) * c.d + e]
                           : q.get((t * c.hq + h) * c.d + e)) *
                 histK[r][(j * c.hkv + kh) * c.d + e];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (double &x : s)
        sum += (x = std::exp(x - mx));
      for (int64_t e = 0; e < c.dv; ++e) {
        double acc = 0;
        for (int64_t j = 0; j <= p; ++j)
          acc += s[j] * histV[r][(j * c.hkv + kh) * c.dv + e];
        want[(t * c.hq + h) * c.dv + e] = acc / sum;
      }
    }
  }

  Step step;
  step.set_kind(Step::PAGED_ATTENTION);
  step.set_name("paged");
  step.mutable_paged_attention()->set_scale(scale);
  step.mutable_paged_attention()->set_block_size(c.blockSize);
  std::vector<cuda::DeviceTensor> ins = {
      q.device(),  k.device(),   v.device(),   kc.device(),
      vc.device(), pos.device(), seq.device(), table.device()};
  std::vector<cuda::DeviceTensor> outs = {out.device()};
  if (c.inPlace)
    outs[0].data = q.dev;
  Step rotaryStep;
  rotaryStep.set_kind(Step::ROTARY);
  rotaryStep.mutable_rotary()->set_interleaved(c.interleaved);
  cuda::PagedRotary rotary{&rotaryStep,   &rotaryStep,   q.device(),
                           cosT.device(), sinT.device(), k.device(),
                           cosT.device(), sinT.device()};
  auto bound = c.rotary
                   ? cuda::bindPagedAttentionRotary(step, ins, outs, rotary)
                   : cuda::bindLibraryStep(step, ins, outs);
  if (!bound.ok() || !*bound) {
    std::printf("FAIL %s: bind: %s\n", c.name.c_str(),
                bound.ok() ? "declined" : bound.message().c_str());
    return false;
  }
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool ok = true;
  std::string detail;
  for (int run = 0; run < 2 && ok; ++run) {
    if (c.inPlace)
      q.upload(); // the last run wrote its output there
    else
      out.poison();
    Status launched;
    if (c.graph) {
      if (!exec) {
        cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
        launched = (*bound)->launch(stream);
        cudaStreamEndCapture(stream, &graph);
        if (launched.ok() &&
            cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
          launched = errorStatus("instantiating the graph");
      }
      if (launched.ok())
        launched = cuda::cudaStatus(cudaGraphLaunch(exec, stream), "replay");
    } else {
      launched = (*bound)->launch(stream);
    }
    cudaError_t err = cudaStreamSynchronize(stream);
    if (!launched.ok() || err != cudaSuccess) {
      std::printf("FAIL %s: %s %s\n", c.name.c_str(),
                  launched.message().c_str(), cudaGetErrorString(err));
      return false;
    }
    if (c.inPlace)
      cudaMemcpy(out.host.data(), q.dev, out.host.size(),
                 cudaMemcpyDeviceToHost);
    else
      out.download();
    std::vector<double> got(out.size());
    for (int64_t i = 0; i < out.size(); ++i)
      got[i] = out.get(i);
    double err2 = relError(got, want);
    ok = err2 <= tolFor(c.dtype) * 2;
    // The cache now holds every new token's k and v, bit for bit.
    kc.download();
    vc.download();
    for (int64_t t = 0; t < tokens && ok; ++t) {
      auto [r, p] = order[t];
      if (r < 0)
        continue;
      // A rotated k may differ by a rounding of the last bit (fused
      // multiply-adds on the device).
      for (int64_t e = 0; e < c.hkv * c.d && ok; ++e) {
        double got = kc.get(slot(r, p) * c.hkv * c.d + e),
               want = histK[r][p * c.hkv * c.d + e];
        ok = c.rotary ? std::abs(got - want) <=
                            tolFor(c.dtype) * std::max(1.0, std::abs(want))
                      : got == want;
      }
      for (int64_t e = 0; e < c.hkv * c.dv && ok; ++e)
        ok = vc.get(slot(r, p) * c.hkv * c.dv + e) ==
             histV[r][p * c.hkv * c.dv + e];
      if (!ok)
        detail = "cache slot of token " + std::to_string(t) + " differs; ";
    }
    char buf[128];
    std::snprintf(buf, sizeof buf, "rel %.2e (tol %.0e)", err2,
                  tolFor(c.dtype) * 2);
    detail += buf;
  }
  if (exec)
    cudaGraphExecDestroy(exec);
  if (graph)
    cudaGraphDestroy(graph);
  std::printf("%s %s: %s\n", ok ? "PASS" : "FAIL", c.name.c_str(),
              detail.c_str());
  std::fflush(stdout);
  return ok;
}

int pagedAttentionCases() {
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  std::mt19937_64 rng(0xa77e);
  int failures = 0;
  // Decode steps of more than 64 tokens, one a row.
  std::vector<RowSpan> manyRows;
  for (int64_t r = 0; r < 80; ++r)
    manyRows.push_back({(r * 37) % 120, (r * 37) % 120});
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    std::string t = dn(dt);
    std::vector<PagedCase> cases = {
        // Decode: one new token per row, GQA 4:1, a padding row.
        {"decode gqa " + t,
         dt,
         8,
         2,
         64,
         64,
         16,
         8,
         {{0, 0}, {37, 37}, {127, 127}, {64, 64}},
         1},
        // Decode of one long row: the context split over blocks.
        {"decode 4k " + t, dt, 32, 8, 128, 128, 16, 256, {{4095, 4095}}, 0},
        {"decode 4k graph " + t,
         dt,
         32,
         8,
         128,
         128,
         16,
         256,
         {{3000, 3000}, {17, 17}},
         0,
         true},
        // One kv head and a long max_seq: more splits than a grid's z
        // dimension holds (64), were they not capped.
        {"decode mqa long " + t,
         dt,
         8,
         1,
         128,
         128,
         16,
         2048,
         {{20000, 20000}},
         0},
        // 80 rows of one token; 3 query heads a kv head.
        {"decode many rows " + t, dt, 6, 2, 64, 64, 16, 8, manyRows, 0},
        // A 256-wide head, the context split, padding, in a graph.
        {"decode d256 graph " + t,
         dt,
         4,
         2,
         256,
         256,
         16,
         64,
         {{900, 900}, {3, 3}},
         1,
         true},
        // ROTARY applied by the launch: decode rows, a packed prompt
        // (new positions read from k), interleaved, the output over q.
        {"rotary decode " + t,
         dt,
         32,
         8,
         128,
         128,
         16,
         256,
         {{3000, 3000}, {17, 17}, {0, 0}},
         1,
         true,
         true},
        {"rotary packed interleaved " + t,
         dt,
         8,
         2,
         64,
         64,
         16,
         8,
         {{0, 20}, {50, 60}, {99, 99}},
         2,
         false,
         true,
         true},
        {"rotary in place " + t,
         dt,
         32,
         8,
         128,
         128,
         16,
         32,
         {{300, 300}, {40, 45}},
         0,
         true,
         true,
         false,
         true},
        // MQA, d != dv, odd head dim, block size 8.
        {"decode mqa " + t, dt, 6, 1, 40, 24, 8, 20, {{100, 100}, {5, 5}}, 2},
        // Prefill: fresh prompts and a continued one, packed, with padding.
        {"prefill small " + t, dt, 4, 4, 32, 32, 16, 4, {{0, 24}, {10, 24}}, 3},
        {"prefill tiled gqa " + t,
         dt,
         16,
         4,
         128,
         128,
         32,
         16,
         {{0, 199}, {150, 300}, {0, 40}},
         5},
        {"prefill tiled graph " + t,
         dt,
         8,
         8,
         64,
         64,
         16,
         12,
         {{0, 90}, {60, 130}},
         4,
         true},
    };
    // Each case through the one-launch decode kernel where it takes the
    // shape, and through the general kernels (WEFT_PAGED_DECODE=0).
    for (const char *general : {"1", "0"}) {
      setenv("WEFT_PAGED_DECODE", general, 1);
      for (PagedCase c : cases) {
        if (*general == '0' && c.rotary)
          continue; // only the decode kernel rotates
        if (*general == '0')
          c.name += " (general kernels)";
        failures += runPaged(c, rng, stream) ? 0 : 1;
      }
    }
    unsetenv("WEFT_PAGED_DECODE");
  }
  cudaStreamDestroy(stream);
  std::printf("paged attention: %d failed\n", failures);
  return failures;
}

TEST(CudaGeneration, PagedAttention) { isolatedRun(pagedAttentionCases); }

/// The bind error of a generation step over fake device operands (refusals
/// never touch the GPU).
std::string bindError(const Step &step, std::vector<cuda::DeviceTensor> in,
                      std::vector<cuda::DeviceTensor> out) {
  alignas(256) static std::byte storage[256];
  for (auto *list : {&in, &out})
    for (cuda::DeviceTensor &t : *list)
      t.data = storage;
  auto bound = cuda::bindLibraryStep(step, in, out);
  return bound.ok() ? "" : bound.message();
}

TEST(CudaGeneration, PagedAttentionRefusals) {
  Step step;
  step.set_kind(Step::PAGED_ATTENTION);
  step.set_name("pa");
  step.mutable_paged_attention()->set_block_size(16);
  auto operands = [](DType dt, int64_t hq, int64_t hkv, int64_t blocks,
                     int64_t blockSize, DType posType) {
    return std::vector<cuda::DeviceTensor>{
        {dt, {1, 5, hq, 64}, nullptr},
        {dt, {1, 5, hkv, 64}, nullptr},
        {dt, {1, 5, hkv, 64}, nullptr},
        {dt, {blocks, blockSize, hkv, 64}, nullptr},
        {dt, {blocks, blockSize, hkv, 64}, nullptr},
        {posType, {1, 5}, nullptr},
        {DType::I32, {5}, nullptr},
        {DType::I32, {2, 8}, nullptr}};
  };
  std::vector<cuda::DeviceTensor> out = {{DType::BF16, {1, 5, 8, 64}, nullptr}};
  struct Refusal {
    std::vector<cuda::DeviceTensor> in;
    const char *says;
  };
  for (const Refusal &r :
       {Refusal{operands(DType::I32, 8, 2, 4, 16, DType::I64), "not f32"},
        Refusal{operands(DType::F16, 8, 2, 4, 16, DType::I64), "one dtype"},
        Refusal{operands(DType::BF16, 8, 3, 4, 16, DType::I64), "do not"},
        Refusal{operands(DType::BF16, 8, 2, 4, 8, DType::I64), "block_size"},
        Refusal{operands(DType::BF16, 8, 2, 0, 16, DType::I64), "no blocks"},
        Refusal{operands(DType::BF16, 8, 2, 4, 16, DType::I32), "positions"}}) {
    std::string err = bindError(step, r.in, out);
    EXPECT_NE(err.find("PAGED_ATTENTION step 'pa'"), std::string::npos) << err;
    EXPECT_NE(err.find(r.says), std::string::npos) << err;
  }
  EXPECT_NE(bindError(step, {}, out).find("takes 8 inputs"), std::string::npos);
}

TEST(CudaGeneration, SampleRefusals) {
  Step step;
  step.set_kind(Step::SAMPLE);
  step.set_name("s");
  std::vector<cuda::DeviceTensor> out = {{DType::I32, {4}, nullptr}};
  auto in = [](DType logits, Shape params, DType seeds) {
    return std::vector<cuda::DeviceTensor>{{logits, {4, 100}, nullptr},
                                           {DType::F32, params, nullptr},
                                           {seeds, {4, 2}, nullptr}};
  };
  EXPECT_NE(bindError(step, in(DType::I64, {4, 3}, DType::I64), out)
                .find("logits are i64"),
            std::string::npos);
  EXPECT_NE(bindError(step, in(DType::F32, {4, 2}, DType::I64), out)
                .find("params must be f32 [4, 3]"),
            std::string::npos);
  EXPECT_NE(bindError(step, in(DType::F32, {4, 3}, DType::I32), out)
                .find("seeds must be i64"),
            std::string::npos);
  EXPECT_NE(bindError(step, in(DType::F32, {4, 3}, DType::I64),
                      {{DType::I64, {4}, nullptr}})
                .find("ids must be i32"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// SAMPLE
//===----------------------------------------------------------------------===//

struct SampleRow {
  float temperature, topK, topP;
  int64_t seed, position;
};

/// The host's sample of one row: the kept set by sorting, then the argmax
/// of z + g over it. Also returns the kept ids.
int64_t hostSample(const std::vector<float> &logits, const SampleRow &s,
                   std::vector<bool> *keptOut = nullptr) {
  int64_t vocab = static_cast<int64_t>(logits.size());
  if (!(s.temperature > 0)) {
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[best])
        best = i;
    return best;
  }
  std::vector<float> z(vocab);
  for (int64_t i = 0; i < vocab; ++i)
    z[i] = logits[i] / s.temperature;
  std::vector<float> sorted = z;
  std::sort(sorted.rbegin(), sorted.rend());
  float floor = -INFINITY;
  int64_t k = static_cast<int64_t>(s.topK);
  if (k > 0 && k < vocab)
    floor = sorted[k - 1];
  if (s.topP < 1) {
    double total = 0;
    for (float x : sorted)
      if (x >= floor)
        total += std::exp(double(x) - sorted[0]);
    double mass = 0;
    for (size_t i = 0; i < sorted.size(); ++i) {
      // All the equal values at once: {z >= t} takes them together.
      mass += std::exp(double(sorted[i]) - sorted[0]);
      if (i + 1 < sorted.size() && sorted[i + 1] == sorted[i])
        continue;
      if (mass >= s.topP * total) {
        floor = std::max(floor, sorted[i]);
        break;
      }
    }
  }
  std::vector<bool> kept(vocab);
  int64_t best = -1;
  double bestScore = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) {
    kept[i] = z[i] >= floor;
    if (!kept[i])
      continue;
    double score = z[i] + steps::sampleGumbel(s.seed, s.position,
                                              static_cast<uint64_t>(i));
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  if (keptOut)
    *keptOut = kept;
  return best;
}

/// Samples every row on the GPU.
std::vector<int64_t> deviceSample(const std::vector<std::vector<float>> &rows,
                                  const std::vector<SampleRow> &params,
                                  DType dtype, cudaStream_t stream, bool *ok) {
  int64_t r = static_cast<int64_t>(rows.size());
  int64_t vocab = static_cast<int64_t>(rows[0].size());
  Tensor logits(dtype, {1, r, vocab}), ps(DType::F32, {r, 3}),
      seeds(DType::I64, {r, 2}), ids(DType::I32, {r});
  for (int64_t i = 0; i < r; ++i) {
    for (int64_t j = 0; j < vocab; ++j)
      logits.set(i * vocab + j, rows[i][j]);
    ps.set(i * 3, params[i].temperature);
    ps.set(i * 3 + 1, params[i].topK);
    ps.set(i * 3 + 2, params[i].topP);
    seeds.setInt(i * 2, params[i].seed);
    seeds.setInt(i * 2 + 1, params[i].position);
  }
  for (Tensor *t : {&logits, &ps, &seeds})
    t->upload();
  ids.poison();
  Step step;
  step.set_kind(Step::SAMPLE);
  step.set_name("sample");
  std::vector<cuda::DeviceTensor> ins = {logits.device(), ps.device(),
                                         seeds.device()};
  std::vector<cuda::DeviceTensor> outs = {ids.device()};
  auto bound = cuda::bindLibraryStep(step, ins, outs);
  std::vector<int64_t> result;
  if (!bound.ok() || !(*bound)->launch(stream).ok() ||
      cudaStreamSynchronize(stream) != cudaSuccess) {
    std::printf("FAIL sample: %s\n",
                bound.ok() ? "launch" : bound.message().c_str());
    *ok = false;
    return result;
  }
  ids.download();
  for (int64_t i = 0; i < r; ++i)
    result.push_back(ids.getInt(i));
  return result;
}

/// The rows' logits as the dtype rounds them.
std::vector<float> roundedRow(int64_t vocab, DType dtype, std::mt19937_64 &rng,
                              double spread) {
  std::normal_distribution<double> normal(0, spread);
  std::vector<float> row(vocab);
  for (int64_t i = 0; i < vocab; ++i)
    row[i] = static_cast<float>(rounded(dtype, normal(rng)));
  return row;
}

int sampleCases() {
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  std::mt19937_64 rng(0x5a3b1e);
  int failures = 0;
  auto report = [&](bool pass, const std::string &name,
                    const std::string &detail) {
    std::printf("%s %s: %s\n", pass ? "PASS" : "FAIL", name.c_str(),
                detail.c_str());
    std::fflush(stdout);
    failures += pass ? 0 : 1;
  };
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    for (int64_t vocab : {7, 1000, 50257, 128256}) {
      std::string name =
          std::string(dn(dt)) + " vocab " + std::to_string(vocab);
      // Mixed rows: greedy (with ties to the max), plain, top_k, top_p,
      // both; on 16-bit logits ties are common.
      std::vector<std::vector<float>> rows;
      std::vector<SampleRow> params;
      std::uniform_real_distribution<float> unit(0.05f, 0.95f);
      for (int i = 0; i < 24; ++i) {
        std::vector<float> row = roundedRow(vocab, dt, rng, 3.0);
        if (i % 6 == 0) {
          float mx = *std::max_element(row.begin(), row.end());
          row[rng() % vocab] = mx;
          row[rng() % vocab] = mx;
        }
        float t = i % 6 == 0 ? 0.0f : 0.5f + unit(rng);
        float topK =
            i % 3 == 1 ? float(1 + rng() % std::min<int64_t>(vocab, 60)) : 0.0f;
        float topP = i % 4 >= 2 ? unit(rng) : 1.0f;
        rows.push_back(row);
        params.push_back({t, topK, topP, static_cast<int64_t>(rng()),
                          static_cast<int64_t>(rng() % 4096)});
      }
      bool ok = true;
      auto got = deviceSample(rows, params, dt, stream, &ok);
      if (!ok) {
        report(false, name, "did not run");
        continue;
      }
      int exact = 0, nearTies = 0;
      std::string bad;
      for (size_t i = 0; i < rows.size(); ++i) {
        std::vector<bool> kept;
        int64_t want = hostSample(rows[i], params[i], &kept);
        if (got[i] == want) {
          ++exact;
          continue;
        }
        // A pick that differs only by rounding: kept (under a slightly
        // larger top_p) with a score within rounding of the best.
        SampleRow looser = params[i];
        looser.topP = std::min(1.0f, looser.topP * 1.001f);
        std::vector<bool> keptLoose;
        hostSample(rows[i], looser, &keptLoose);
        auto score = [&](int64_t id) {
          return rows[i][id] / params[i].temperature +
                 steps::sampleGumbel(params[i].seed, params[i].position, id);
        };
        bool plausible = params[i].temperature > 0 && got[i] >= 0 &&
                         got[i] < vocab && keptLoose[got[i]] &&
                         std::abs(score(got[i]) - score(want)) <
                             1e-4 * (1 + std::abs(score(want)));
        if (plausible)
          ++nearTies;
        else
          bad += " row " + std::to_string(i) + ": " + std::to_string(got[i]) +
                 " vs " + std::to_string(want) + ";";
      }
      report(bad.empty(), name + " vs host",
             std::to_string(exact) + " exact, " + std::to_string(nearTies) +
                 " near ties" + bad);
      // The same seeds again give the same ids; rows reordered too.
      auto again = deviceSample(rows, params, dt, stream, &ok);
      std::vector<std::vector<float>> revRows(rows.rbegin(), rows.rend());
      std::vector<SampleRow> revParams(params.rbegin(), params.rend());
      auto reversed = deviceSample(revRows, revParams, dt, stream, &ok);
      std::reverse(reversed.begin(), reversed.end());
      report(ok && again == got && reversed == got, name + " reproducible",
             "same seeds, same ids, in any batch order");
    }
  }

  // Frequencies: many seeds over one small row against its softmax, with
  // top_k and top_p cutting the support.
  const std::vector<float> logits = {1.0f,  2.5f, 0.0f, 2.0f,
                                     -1.0f, 1.5f, 0.5f, 2.4f};
  const int64_t vocab = static_cast<int64_t>(logits.size());
  const int draws = 20000;
  struct Freq {
    float topK, topP;
    std::string name;
  };
  for (const Freq &f :
       {Freq{0, 1, "frequencies softmax"}, Freq{3, 1, "frequencies top_k 3"},
        Freq{0, 0.6f, "frequencies top_p 0.6"},
        Freq{4, 0.8f, "frequencies top_k 4 top_p 0.8"}}) {
    const float temperature = 0.8f;
    std::vector<std::vector<float>> rows(draws, logits);
    std::vector<SampleRow> params;
    for (int i = 0; i < draws; ++i)
      params.push_back({temperature, f.topK, f.topP, 1000 + i, 7});
    bool ok = true;
    auto got = deviceSample(rows, params, DType::F32, stream, &ok);
    if (!ok) {
      report(false, f.name, "did not run");
      continue;
    }
    std::vector<bool> kept;
    hostSample(logits, params[0], &kept);
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i)
      total += kept[i] ? std::exp(logits[i] / temperature) : 0;
    std::vector<int> counts(vocab);
    for (int64_t id : got)
      counts[std::clamp<int64_t>(id, 0, vocab - 1)]++;
    bool pass = true;
    std::string detail;
    for (int64_t i = 0; i < vocab; ++i) {
      double p = kept[i] ? std::exp(logits[i] / temperature) / total : 0;
      double seen = counts[i] / double(draws);
      double sigma = std::sqrt(std::max(p * (1 - p), 1e-12) / draws);
      bool fine =
          kept[i] ? std::abs(seen - p) <= 5 * sigma + 1e-3 : counts[i] == 0;
      pass &= fine;
      char buf[64];
      std::snprintf(buf, sizeof buf, " %lld:%.3f/%.3f",
                    static_cast<long long>(i), seen, p);
      detail += buf;
    }
    report(pass, f.name, "seen/softmax" + detail);
  }
  cudaStreamDestroy(stream);
  std::printf("sample: %d failed\n", failures);
  return failures;
}

TEST(CudaGeneration, Sample) { isolatedRun(sampleCases); }

//===----------------------------------------------------------------------===//
// Skinny GEMM
//===----------------------------------------------------------------------===//

struct GemvCase {
  DType dtype;
  int64_t m, k, n;
  bool transB, bias, residual, gelu, widened;
};

bool runGemv(const GemvCase &c, cuda::GemmContext &gemm, std::mt19937_64 &rng,
             cudaStream_t stream) {
  char name[160];
  std::snprintf(name, sizeof name, "gemv %s m%lld k%lld n%lld%s%s%s%s%s",
                dn(c.dtype), static_cast<long long>(c.m),
                static_cast<long long>(c.k), static_cast<long long>(c.n),
                c.transB ? " transB" : "", c.bias ? " bias" : "",
                c.residual ? " residual" : "", c.gelu ? " gelu" : "",
                c.widened ? " f32-out" : "");
  std::normal_distribution<double> normal;
  DType outType = c.widened ? DType::F32 : c.dtype;
  // a as [1, m, k]: the batch folds into the rows.
  Tensor a(c.dtype, {1, c.m, c.k});
  Tensor w(c.dtype, c.transB ? Shape{c.n, c.k} : Shape{c.k, c.n});
  Tensor bias(c.dtype, {c.n}), res(c.dtype, {1, c.m, c.n});
  Tensor out(outType, {1, c.m, c.n});
  for (Tensor *t : {&a, &w, &bias, &res}) {
    for (int64_t i = 0; i < t->size(); ++i)
      t->set(i, normal(rng));
    t->upload();
  }
  out.poison();
  std::vector<double> want(c.m * c.n);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double s = 0;
      for (int64_t kk = 0; kk < c.k; ++kk)
        s +=
            a.get(i * c.k + kk) * w.get(c.transB ? j * c.k + kk : kk * c.n + j);
      if (c.bias)
        s += bias.get(j);
      if (c.residual)
        s += res.get(i * c.n + j);
      if (c.gelu)
        s = 0.5 * s *
            (1 + std::tanh(0.7978845608028654 * (s + 0.044715 * s * s * s)));
      want[i * c.n + j] = s;
    }
  Step step;
  step.set_kind(Step::GEMM);
  step.set_name("gemv");
  auto *attrs = step.mutable_gemm();
  attrs->set_transpose_b(c.transB);
  attrs->set_has_bias(c.bias);
  attrs->set_has_residual(c.residual);
  attrs->set_gelu(c.gelu);
  attrs->set_linear(true);
  std::vector<cuda::DeviceTensor> ins = {a.device(), w.device()};
  if (c.bias)
    ins.push_back(bias.device());
  if (c.residual)
    ins.push_back(res.device());
  std::vector<cuda::DeviceTensor> outs = {out.device()};
  auto bound = gemm.bind(step, ins, outs, stream);
  if (!bound.ok() || !(*bound)->launch(stream).ok() ||
      cudaStreamSynchronize(stream) != cudaSuccess) {
    std::printf("FAIL %s: %s\n", name,
                bound.ok() ? "launch" : bound.message().c_str());
    return false;
  }
  out.download();
  std::vector<double> got(out.size());
  for (int64_t i = 0; i < out.size(); ++i)
    got[i] = out.get(i);
  double err = relError(got, want);
  double tol = c.widened ? 1e-5 : tolFor(c.dtype);
  bool ok = err <= tol;
  std::printf("%s %s: rel %.2e (tol %.0e)\n", ok ? "PASS" : "FAIL", name, err,
              tol);
  std::fflush(stdout);
  return ok;
}

int gemvCases() {
  // WEFT_GEMV=0 would give these to cuBLASLt (CudaGemm.cpp).
  setenv("WEFT_GEMV", "1", 1);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  auto gemm = cuda::GemmContext::create(/*tune=*/false);
  if (!gemm.ok()) {
    std::printf("FAIL gemv: %s\n", gemm.message().c_str());
    return 1;
  }
  std::mt19937_64 rng(0x6e3f);
  int failures = 0;
  for (DType dt : {DType::BF16, DType::F16})
    for (int64_t m : {1, 2, 5, 8})
      for (auto [k, n] : {std::pair<int64_t, int64_t>{4096, 512},
                          {1000, 776},
                          {333, 131},
                          {4104, 1031},
                          {1000, 131},
                          {4096, 7},
                          {24, 8}})
        for (bool transB : {false, true}) {
          int variant = static_cast<int>(rng() % 4);
          GemvCase c{dt,
                     m,
                     k,
                     n,
                     transB,
                     variant == 1 || variant == 3,
                     variant == 2,
                     variant == 3,
                     false};
          failures += runGemv(c, **gemm, rng, stream) ? 0 : 1;
        }
  for (bool transB : {false, true})
    failures +=
        runGemv({DType::BF16, 3, 2048, 1024, transB, false, false, false, true},
                **gemm, rng, stream)
            ? 0
            : 1;
  cudaStreamDestroy(stream);
  unsetenv("WEFT_GEMV");
  std::printf("gemv: %d failed\n", failures);
  return failures;
}

TEST(CudaGeneration, Gemv) { isolatedRun(gemvCases); }

/// Several projections of the same activations in one launch (the q, k and
/// v of attention; bias on the second, residual on the third), or a gated
/// pair storing silu(gate) * up with gate, up and silu(gate) rounded to the
/// dtype as the separate steps round them. The reference is computed in
/// double from the same rounded inputs.
bool runGemvGroup(DType dt, int64_t m, int64_t k, std::vector<int64_t> ns,
                  bool swiglu, bool norm, cuda::GemmContext &gemm,
                  std::mt19937_64 &rng, cudaStream_t stream) {
  std::string widths;
  for (int64_t n : ns)
    widths += (widths.empty() ? "" : ",") + std::to_string(n);
  char name[160];
  std::snprintf(name, sizeof name, "gemv group %s m%lld k%lld n%s%s%s", dn(dt),
                static_cast<long long>(m), static_cast<long long>(k),
                widths.c_str(), swiglu ? " swiglu" : "",
                norm ? " rms-norm" : "");
  std::normal_distribution<double> normal;
  size_t count = ns.size();
  Tensor a(dt, {1, m, k});
  std::vector<std::unique_ptr<Tensor>> ws, biases, residuals, outs;
  for (size_t i = 0; i < count; ++i) {
    ws.push_back(std::make_unique<Tensor>(dt, Shape{ns[i], k}));
    biases.push_back(std::make_unique<Tensor>(dt, Shape{ns[i]}));
    residuals.push_back(std::make_unique<Tensor>(dt, Shape{1, m, ns[i]}));
    outs.push_back(std::make_unique<Tensor>(dt, Shape{1, m, ns[i]}));
  }
  Tensor product(dt, {1, m, ns[0]});
  std::vector<Tensor *> filled = {&a};
  for (size_t i = 0; i < count; ++i)
    filled.insert(filled.end(),
                  {ws[i].get(), biases[i].get(), residuals[i].get()});
  for (Tensor *t : filled) {
    for (int64_t i = 0; i < t->size(); ++i)
      t->set(i, normal(rng) / (t == &a ? 1 : std::sqrt(double(k))));
    t->upload();
  }
  // With the norm, a is the norm of x (host values: the reference) and
  // the launch must not read it (poisoned on the device).
  Tensor x(dt, {1, m, k}), scale(dt, {k});
  const float eps = 1e-5f;
  if (norm) {
    for (int64_t i = 0; i < x.size(); ++i)
      x.set(i, 2 * normal(rng));
    for (int64_t i = 0; i < k; ++i)
      scale.set(i, 1 + 0.3 * normal(rng));
    x.upload();
    scale.upload();
    for (int64_t r = 0; r < m; ++r) {
      double sq = 0;
      for (int64_t i = 0; i < k; ++i)
        sq += x.get(r * k + i) * x.get(r * k + i);
      double inv = 1 / std::sqrt(sq / k + eps);
      for (int64_t i = 0; i < k; ++i)
        a.set(r * k + i, rounded(dt, x.get(r * k + i) * inv * scale.get(i)));
    }
    a.poison();
  }
  for (auto &o : outs)
    o->poison();
  product.poison();
  bool bias1 = !swiglu && count > 1, residual2 = !swiglu && count > 2;
  std::vector<Step> steps(count);
  std::vector<std::vector<cuda::DeviceTensor>> ins(count), os(count);
  std::vector<cuda::GemmContext::GemvMember> members;
  for (size_t i = 0; i < count; ++i) {
    steps[i].set_kind(Step::GEMM);
    steps[i].set_name("proj" + std::to_string(i));
    auto *attrs = steps[i].mutable_gemm();
    attrs->set_transpose_b(true);
    attrs->set_linear(true);
    ins[i] = {a.device(), ws[i]->device()};
    if (bias1 && i == 1) {
      attrs->set_has_bias(true);
      ins[i].push_back(biases[i]->device());
    }
    if (residual2 && i == 2) {
      attrs->set_has_residual(true);
      ins[i].push_back(residuals[i]->device());
    }
    os[i] = {outs[i]->device()};
  }
  for (size_t i = 0; i < count; ++i)
    members.push_back({&steps[i], ins[i], os[i]});
  cuda::DeviceTensor prod = product.device();
  cuda::GemmContext::GemvNorm prologue{x.device(), scale.device(), eps};
  auto bound = gemm.bindGemvGroup(members, swiglu ? &prod : nullptr,
                                  norm ? &prologue : nullptr);
  if (!bound.ok() || !(*bound)->launch(stream).ok() ||
      cudaStreamSynchronize(stream) != cudaSuccess) {
    std::printf("FAIL %s: %s\n", name,
                bound.ok() ? "launch" : bound.message().c_str());
    return false;
  }
  // sums[i][r * n + j]: projection i's unrounded output.
  std::vector<std::vector<double>> sums(count);
  for (size_t i = 0; i < count; ++i) {
    sums[i].resize(m * ns[i]);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < ns[i]; ++j) {
        double acc = 0;
        for (int64_t kk = 0; kk < k; ++kk)
          acc += a.get(r * k + kk) * ws[i]->get(j * k + kk);
        if (bias1 && i == 1)
          acc += biases[i]->get(j);
        if (residual2 && i == 2)
          acc += residuals[i]->get(r * ns[i] + j);
        sums[i][r * ns[i] + j] = acc;
      }
  }
  bool ok = true;
  std::string detail;
  auto check = [&](Tensor &t, const std::vector<double> &want,
                   const char *what) {
    t.download();
    std::vector<double> got(t.size());
    for (int64_t i = 0; i < t.size(); ++i)
      got[i] = t.get(i);
    double err = relError(got, want);
    ok &= err <= tolFor(dt);
    char buf[80];
    std::snprintf(buf, sizeof buf, " %s rel %.2e", what, err);
    detail += buf;
  };
  if (swiglu) {
    std::vector<double> want(m * ns[0]);
    for (size_t i = 0; i < want.size(); ++i) {
      double g = rounded(dt, sums[0][i]), u = rounded(dt, sums[1][i]);
      want[i] = rounded(dt, g / (1 + std::exp(-g))) * u;
    }
    check(product, want, "silu(gate)*up");
    // The pair stores only the product.
    outs[0]->download();
    bool untouched = true;
    for (std::byte b : outs[0]->host)
      untouched &= b == std::byte{0xFF};
    ok &= untouched;
    detail += untouched ? "" : " (wrote the gate)";
  } else {
    for (size_t i = 0; i < count; ++i)
      check(*outs[i], sums[i], steps[i].name().c_str());
  }
  std::printf("%s %s:%s (tol %.0e)\n", ok ? "PASS" : "FAIL", name,
              detail.c_str(), tolFor(dt));
  std::fflush(stdout);
  return ok;
}

int gemvGroupCases() {
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  auto gemm = cuda::GemmContext::create(/*tune=*/false);
  if (!gemm.ok()) {
    std::printf("FAIL gemv group: %s\n", gemm.message().c_str());
    return 1;
  }
  std::mt19937_64 rng(0x9a11);
  int failures = 0;
  struct Case {
    int64_t k;
    std::vector<int64_t> ns;
    bool swiglu;
  };
  // q, k, v of a 1b-like layer; odd widths that pad a warp's pair; gated
  // pairs.
  const std::vector<Case> cases = {{2048, {2048, 512, 512}, false},
                                   {1032, {517, 3, 1001}, false},
                                   {520, {96, 40}, false},
                                   {2048, {1536, 1536}, true},
                                   {264, {7, 7}, true}};
  for (DType dt : {DType::BF16, DType::F16})
    for (int64_t m : {1, 3, 4})
      for (const Case &c : cases)
        for (bool norm : {false, true})
          failures += runGemvGroup(dt, m, c.k, c.ns, c.swiglu, norm, **gemm,
                                   rng, stream)
                          ? 0
                          : 1;
  // A norm over 4 x 8192 (64 KiB of shared memory, over the default 48).
  failures += runGemvGroup(DType::BF16, 4, 8192, {1024, 256, 256}, false, true,
                           **gemm, rng, stream)
                  ? 0
                  : 1;
  cudaStreamDestroy(stream);
  std::printf("gemv group: %d failed\n", failures);
  return failures;
}

TEST(CudaGeneration, GemvGroup) { isolatedRun(gemvGroupCases); }

//===----------------------------------------------------------------------===//
// The executor: entry points, state buffers, graph replay
//===----------------------------------------------------------------------===//

artifact::Buffer *addBuffer(artifact::Plan &plan, uint32_t id,
                            artifact::Buffer::Kind kind, const Shape &shape,
                            const std::string &name, uint64_t offset = 0) {
  artifact::Buffer *b = plan.add_buffers();
  b->set_id(id);
  b->set_kind(kind);
  b->set_dtype(DType::F32);
  for (int64_t d : shape)
    b->add_shape(d);
  b->set_bytes(numElements(shape) * 4);
  b->set_offset(offset);
  b->set_name(name);
  return b;
}

void addCopy(artifact::EntryPoint *e, uint32_t from, uint32_t to) {
  Step *s = e->add_steps();
  s->set_kind(Step::COPY);
  s->set_name("copy");
  s->add_inputs(from);
  s->add_outputs(to);
}

/// A plan whose entries store an input into state and load it back (one
/// plain state buffer and one KV cache of `blocks` blocks of 8 floats).
RankPlan statePlan() {
  RankPlan rank;
  rank.planPath = "state-plan";
  artifact::Plan &plan = rank.plan;
  plan.set_format_version(kArtifactFormatVersion);
  plan.set_arena_bytes(256);
  using B = artifact::Buffer;
  addBuffer(plan, 0, B::INPUT, {4}, "x", 0);
  addBuffer(plan, 1, B::OUTPUT, {4}, "y", 64);
  addBuffer(plan, 2, B::STATE, {4}, "counter");
  addBuffer(plan, 3, B::INPUT, {2, 8}, "kv_in", 128);
  addBuffer(plan, 4, B::OUTPUT, {2, 8}, "kv_out", 192);
  B *kv = addBuffer(plan, 5, B::STATE, {0, 8}, "kv_cache");
  kv->set_bytes(8 * 4); // one block of [0, 8] f32
  addCopy(plan.add_entry_points(), 0, 2);
  plan.mutable_entry_points(0)->set_name("store");
  plan.mutable_entry_points(0)->add_inputs(0);
  addCopy(plan.add_entry_points(), 2, 1);
  plan.mutable_entry_points(1)->set_name("load");
  plan.mutable_entry_points(1)->add_outputs(1);
  addCopy(plan.add_entry_points(), 3, 5);
  plan.mutable_entry_points(2)->set_name("kv_store");
  plan.mutable_entry_points(2)->add_inputs(3);
  addCopy(plan.add_entry_points(), 5, 4);
  plan.mutable_entry_points(3)->set_name("kv_load");
  plan.mutable_entry_points(3)->add_outputs(4);
  return rank;
}

// The plan itself passes the artifact reader's checks (no GPU needed).
TEST(CudaGeneration, StatePlanIsValid) {
  RankPlan rank = statePlan();
  Status s = validatePlan(rank.plan, rank.planPath, 1);
  EXPECT_TRUE(s.ok()) << s.message();
}

int executorCases() {
  int failures = 0;
  auto report = [&](bool pass, const std::string &name,
                    const std::string &detail) {
    std::printf("%s %s: %s\n", pass ? "PASS" : "FAIL", name.c_str(),
                detail.c_str());
    std::fflush(stdout);
    failures += pass ? 0 : 1;
  };
  Artifact artifact;
  {
    RankPlan rank = statePlan();
    auto exec = cuda::CudaExecutor::create(artifact, rank, {});
    report(!exec.ok() &&
               exec.message().find("kvCacheBlocks") != std::string::npos,
           "executor refuses a KV cache of 0 blocks",
           exec.ok() ? "created" : exec.message());
  }
  RankPlan rank = statePlan();
  rank.kvCacheBlocks = 2;
  auto made = cuda::CudaExecutor::create(artifact, rank, {});
  if (!made.ok()) {
    report(false, "executor create", made.message());
    return failures;
  }
  cuda::CudaExecutor &exec = **made;
  auto names = exec.entryPoints();
  report(names.size() == 5 && names[0] == "forward" && names[1] == "store" &&
             names[4] == "kv_load",
         "executor entry points", std::to_string(names.size()) + " entries");
  report(!exec.selectEntry("decode@9").ok(), "executor unknown entry",
         "refused");
  // State starts zeroed; each store is seen by the next load, over the
  // eager first run, the capture and the replays of both entries.
  bool ok = exec.selectEntry("load").ok() && exec.run().ok();
  ok = ok && std::all_of(exec.output(0).data, exec.output(0).data + 16,
                         [](std::byte b) { return b == std::byte{0}; });
  for (int run = 0; run < 4 && ok; ++run) {
    std::vector<float> x = {float(run), 2.0f * run, -1.0f, 0.5f + run};
    ok = exec.selectEntry("store").ok() && exec.numInputs() == 1 &&
         exec.inputName(0) == "x" &&
         exec.setInput(0, std::as_bytes(std::span(x))).ok() &&
         exec.run().ok() && exec.selectEntry("load").ok() &&
         exec.numOutputs() == 1 && exec.run().ok() &&
         std::memcmp(exec.output(0).data, x.data(), 16) == 0;
  }
  report(ok, "executor state across entries and graph replays",
         "4 store/load rounds");
  ok = true;
  for (int run = 0; run < 3 && ok; ++run) {
    std::vector<float> x(16);
    for (int i = 0; i < 16; ++i)
      x[i] = float(run * 100 + i);
    ok = exec.selectEntry("kv_store").ok() &&
         exec.setInput(0, std::as_bytes(std::span(x))).ok() &&
         exec.run().ok() && exec.selectEntry("kv_load").ok() &&
         exec.run().ok() && std::memcmp(exec.output(0).data, x.data(), 64) == 0;
  }
  report(ok, "executor KV cache of kvCacheBlocks blocks",
         "2 blocks of 8 floats");
  return failures;
}

TEST(CudaGeneration, Executor) { isolatedRun(executorCases); }

//===----------------------------------------------------------------------===//
// Bandwidth
//===----------------------------------------------------------------------===//

/// Median ms of `iters` launches of `launch(i)` (i rotating over copies).
/// The median time of one launch among `iters` launched back to back
/// (each launch's time is the batch's over its count): as they follow each
/// other in a decode step's graph, overlaps included.
float backToBackMs(const std::function<void(int)> &launch, cudaStream_t stream,
                   int iters) {
  for (int i = 0; i < 3; ++i)
    launch(i);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> times;
  for (int rep = 0; rep < 5; ++rep) {
    cudaEventRecord(start, stream);
    for (int i = 0; i < iters; ++i)
      launch(i);
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    times.push_back(ms / iters);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

float medianLaunchMs(const std::function<void(int)> &launch,
                     cudaStream_t stream, int iters) {
  for (int i = 0; i < 3; ++i)
    launch(i);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> times;
  for (int i = 0; i < iters; ++i) {
    cudaEventRecord(start, stream);
    launch(i);
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

int benchGemv() {
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  int failures = 0;
  // A device copy first: the ceiling (bytes read plus written).
  {
    size_t bytes = 1ull << 30;
    void *src = nullptr, *dst = nullptr;
    cudaMalloc(&src, bytes);
    cudaMalloc(&dst, bytes);
    cudaMemset(src, 1, bytes);
    float ms = medianLaunchMs(
        [&](int) {
          cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream);
        },
        stream, 10);
    std::printf("BENCH device copy 1 GiB: %.3f ms, %.0f GB/s (read + write)\n",
                ms, 2.0 * bytes / (ms * 1e-3) / 1e9);
    cudaFree(src);
    cudaFree(dst);
  }
  // Weights rotated, far over the L2: 4 x 117 MB for the 8b's MLP shapes;
  // the 1b's projections (w [n, k], as a Linear's) 16 of them.
  struct Shape3 {
    int64_t k, n;
    bool transB;
  };
  std::vector<Shape3> shapes;
  for (auto [k, n] : {std::pair<int64_t, int64_t>{4096, 14336}, {14336, 4096}})
    for (bool transB : {true, false})
      shapes.push_back({k, n, transB});
  for (auto [k, n] : {std::pair<int64_t, int64_t>{2048, 2048},
                      {2048, 512},
                      {2048, 8192},
                      {8192, 2048}})
    shapes.push_back({k, n, true});
  for (auto [k, n, transB] : shapes)
    for (int64_t m : {1, 4}) {
      const int copies = k * n >= 4096 * 4096 ? 4 : 16;
      std::vector<void *> ws(copies);
      size_t wBytes = size_t(k) * n * 2;
      void *a = nullptr, *out = nullptr;
      bool allocated = cudaMalloc(&a, m * k * 2) == cudaSuccess &&
                       cudaMalloc(&out, m * n * 2) == cudaSuccess;
      cudaMemset(a, 0x3c, m * k * 2);
      for (void *&w : ws) {
        allocated = allocated && cudaMalloc(&w, wBytes) == cudaSuccess;
        if (allocated)
          cudaMemset(w, 0x3c, wBytes); // bf16 ~0.0115
      }
      if (!allocated) {
        std::printf("BENCH FAIL gemv: cudaMalloc\n");
        ++failures;
        continue;
      }
      Step step;
      step.set_kind(Step::GEMM);
      step.set_name("gemv");
      step.mutable_gemm()->set_transpose_b(transB);
      step.mutable_gemm()->set_linear(true);
      // The skinny GEMM bound directly (bind() gives it at most
      // kGemvMaxRows rows, and only w [n, k]), against cuBLASLt.
      for (const char *path : {"gemv", "cublaslt"}) {
        bool gemv = std::string(path) == "gemv";
        if (gemv && !transB)
          continue;
        setenv("WEFT_GEMV", "0", 1);
        auto gemm = cuda::GemmContext::create(/*tune=*/true);
        std::vector<std::unique_ptr<cuda::BoundStep>> bound;
        for (void *w : ws) {
          std::vector<cuda::DeviceTensor> ins = {
              {DType::BF16, {m, k}, a},
              {DType::BF16, transB ? Shape{n, k} : Shape{k, n}, w}};
          std::vector<cuda::DeviceTensor> outs = {{DType::BF16, {m, n}, out}};
          if (gemv)
            unsetenv("WEFT_GEMV");
          cuda::GemmContext::GemvMember member{&step, ins, outs};
          auto b = gemv ? (*gemm)->bindGemvGroup({&member, 1}, nullptr)
                        : (*gemm)->bind(step, ins, outs, stream);
          if (b.ok())
            bound.push_back(std::move(*b));
        }
        if (bound.size() != ws.size()) {
          std::printf("BENCH FAIL gemv bind\n");
          ++failures;
          continue;
        }
        auto run = [&](int i) { (void)bound[i % copies]->launch(stream); };
        float ms = medianLaunchMs(run, stream, 40);
        float chained = backToBackMs(run, stream, 4 * copies);
        cudaError_t err = cudaGetLastError();
        double bytes = double(wBytes) + m * k * 2 + m * n * 2;
        std::printf("BENCH %-8s bf16 m=%lld k=%lld n=%lld %s: %.4f ms, %.0f "
                    "GB/s alone; %.4f ms, %.0f GB/s back to back%s\n",
                    path, static_cast<long long>(m), static_cast<long long>(k),
                    static_cast<long long>(n), transB ? "w[n,k]" : "w[k,n]", ms,
                    bytes / (ms * 1e-3) / 1e9, chained,
                    bytes / (chained * 1e-3) / 1e9,
                    err == cudaSuccess ? "" : " ERROR");
        failures += err == cudaSuccess ? 0 : 1;
        bound.clear();
      }
      unsetenv("WEFT_GEMV");
      // The kernel with one and with two weight rows a warp, launched
      // directly (planGemv chooses by the column count), back to back.
      for (int cols : {1, 2}) {
        if (!transB || m != 1)
          break;
        std::vector<cuda::kernels::GemvParams> ps(copies);
        for (int i = 0; i < copies; ++i) {
          cuda::kernels::GemvParams &p = ps[i];
          p.a = a;
          p.seg[0] = {ws[i], nullptr, nullptr, out, n};
          p.m = m;
          p.k = k;
          cuda::kernels::planGemv(p, 132, 0);
          p.warpCols = cols;
          p.dependent = true;
        }
        float chained = backToBackMs(
            [&](int i) {
              (void)cuda::kernels::launchGemv(ps[i % copies], stream);
            },
            stream, 4 * copies);
        cudaError_t err = cudaGetLastError();
        double bytes = double(wBytes) + m * k * 2 + m * n * 2;
        std::printf("BENCH gemv %d row%s a warp, bf16 m=1 k=%lld n=%lld: "
                    "%.4f ms, %.0f GB/s back to back%s\n",
                    cols, cols == 1 ? "" : "s", static_cast<long long>(k),
                    static_cast<long long>(n), chained,
                    bytes / (chained * 1e-3) / 1e9,
                    err == cudaSuccess ? "" : " ERROR");
        failures += err == cudaSuccess ? 0 : 1;
      }
      for (void *w : ws)
        cudaFree(w);
      cudaFree(a);
      cudaFree(out);
      std::fflush(stdout);
    }
  cudaStreamDestroy(stream);
  return failures;
}

TEST(CudaGenerationBench, Gemv) { isolatedRun(benchGemv); }

int benchDecodeAttention() {
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  int failures = 0;
  const int64_t hq = 32, hkv = 8, d = 128, bs = 16;
  for (auto [rows, context] : {std::pair<int64_t, int64_t>{1, 256},
                               {1, 2048},
                               {1, 4096},
                               {8, 4096},
                               {32, 1024},
                               {32, 4096},
                               {256, 640}})
    for (const char *general : {"1", "0"}) {
      setenv("WEFT_PAGED_DECODE", general, 1);
      int64_t bps = context / bs, blocks = rows * bps;
      std::vector<cuda::DeviceTensor> ins = {
          {DType::BF16, {1, rows, hq, d}, nullptr},
          {DType::BF16, {1, rows, hkv, d}, nullptr},
          {DType::BF16, {1, rows, hkv, d}, nullptr},
          {DType::BF16, {blocks, bs, hkv, d}, nullptr},
          {DType::BF16, {blocks, bs, hkv, d}, nullptr},
          {DType::I64, {1, rows}, nullptr},
          {DType::I32, {rows}, nullptr},
          {DType::I32, {rows, bps}, nullptr}};
      std::vector<cuda::DeviceTensor> outs = {
          {DType::BF16, {1, rows, hq, d}, nullptr}};
      for (auto *list : {&ins, &outs})
        for (cuda::DeviceTensor &t : *list) {
          cudaMalloc(&t.data, t.bytes());
          cudaMemset(t.data, 0x3c, t.bytes());
        }
      std::vector<int64_t> pos(rows, context - 1);
      std::vector<int32_t> seq(rows), table(rows * bps);
      std::iota(seq.begin(), seq.end(), 0);
      std::iota(table.begin(), table.end(), 0);
      std::shuffle(table.begin(), table.end(), std::mt19937(7));
      cudaMemcpy(ins[5].data, pos.data(), rows * 8, cudaMemcpyHostToDevice);
      cudaMemcpy(ins[6].data, seq.data(), rows * 4, cudaMemcpyHostToDevice);
      cudaMemcpy(ins[7].data, table.data(), table.size() * 4,
                 cudaMemcpyHostToDevice);
      Step step;
      step.set_kind(Step::PAGED_ATTENTION);
      step.set_name("decode");
      step.mutable_paged_attention()->set_scale(1.0 / std::sqrt(double(d)));
      step.mutable_paged_attention()->set_block_size(bs);
      auto bound = cuda::bindLibraryStep(step, ins, outs);
      if (!bound.ok()) {
        std::printf("BENCH FAIL paged decode: %s\n", bound.message().c_str());
        ++failures;
      } else {
        float ms = medianLaunchMs([&](int) { (void)(*bound)->launch(stream); },
                                  stream, 30);
        cudaError_t err = cudaGetLastError();
        double bytes = 2.0 * rows * context * hkv * d * 2;
        std::printf("BENCH paged decode%s bf16 rows=%lld context=%lld Hq=%lld "
                    "Hkv=%lld D=%lld: %.4f ms, %.0f GB/s of K/V%s\n",
                    *general == '0' ? " (general kernels)" : "",
                    static_cast<long long>(rows),
                    static_cast<long long>(context), static_cast<long long>(hq),
                    static_cast<long long>(hkv), static_cast<long long>(d), ms,
                    bytes / (ms * 1e-3) / 1e9,
                    err == cudaSuccess ? "" : " ERROR");
        failures += err == cudaSuccess ? 0 : 1;
      }
      for (auto *list : {&ins, &outs})
        for (cuda::DeviceTensor &t : *list)
          cudaFree(t.data);
      std::fflush(stdout);
    }
  unsetenv("WEFT_PAGED_DECODE");
  cudaStreamDestroy(stream);
  return failures;
}

TEST(CudaGenerationBench, PagedDecode) { isolatedRun(benchDecodeAttention); }

} // namespace
} // namespace weft::runtime::test
