// weft-calibrate: measures the constants of weft's cost model on the GPU it
// runs on (cuBLASLt bf16 GEMMs over a grid of shapes, HBM copy bandwidth,
// kernel launch and CUDA-graph node overhead) and writes a calibration YAML
// file (docs/planner.md). Collectives are measured separately (see there).
//
//   weft-calibrate -o h100.yaml [--gpu H100] [--quick]
//
// Every measurement prints a PASS or FAIL line; the exit status is non-zero
// if any failed, and then no file is written.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {
int failures = 0;

bool check(cudaError_t err, const char *what) {
  if (err == cudaSuccess)
    return true;
  std::printf("FAIL %s: %s\n", what, cudaGetErrorString(err));
  ++failures;
  return false;
}

bool check(cublasStatus_t status, const char *what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return true;
  std::printf("FAIL %s: cuBLAS status %d\n", what, int(status));
  ++failures;
  return false;
}

/// Milliseconds per call of `fn`, the median of `reps` timed batches of
/// `inner` calls after one warm-up batch.
template <typename Fn> double timeMs(Fn fn, int inner, int reps) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < inner; ++i)
    fn();
  std::vector<float> samples;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(start);
    for (int i = 0; i < inner; ++i)
      fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    samples.push_back(ms / float(inner));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

__global__ void emptyKernel() {}

struct GemmResult {
  long m, n, k;
  double tflops;
};

/// One bf16 GEMM C[m,n] = A[m,k] * B[k,n] (fp32 accumulation) with the
/// heuristic's first algorithm; 0 TFLOP/s (and a FAIL line) if it cannot run.
double timeGemm(cublasLtHandle_t lt, void *workspace, size_t workspaceBytes,
                long m, long n, long k, const void *a, const void *b, void *c) {
  char what[96];
  std::snprintf(what, sizeof what, "gemm %ldx%ldx%ld", m, n, k);
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  double tflops = 0;
  // Column-major: compute C^T[n,m] = B^T[n,k] * A^T[k,m] on row-major data.
  if (check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
            what) &&
      check(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, n, k, n), what) &&
      check(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, k, m, k), what) &&
      check(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, n, m, n), what) &&
      check(cublasLtMatmulPreferenceCreate(&pref), what) &&
      check(cublasLtMatmulPreferenceSetAttribute(
                pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
                sizeof workspaceBytes),
            what)) {
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    if (check(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, lc, pref, 1,
                                             &heuristic, &found),
              what)) {
      if (found == 0) {
        std::printf("FAIL %s: no cuBLASLt algorithm\n", what);
        ++failures;
      } else {
        float alpha = 1, beta = 0;
        cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
        double ms = timeMs(
            [&] {
              status = cublasLtMatmul(lt, desc, &alpha, b, la, a, lb, &beta, c,
                                      lc, c, lc, &heuristic.algo, workspace,
                                      workspaceBytes, 0);
            },
            m * n * k > (1L << 33) ? 5 : 50, 7);
        if (check(status, what) && check(cudaDeviceSynchronize(), what)) {
          tflops = 2.0 * double(m) * double(n) * double(k) / (ms * 1e-3) / 1e12;
          std::printf("PASS %s: %.3f ms, %.1f TFLOP/s\n", what, ms, tflops);
        }
      }
    }
  }
  if (pref)
    cublasLtMatmulPreferenceDestroy(pref);
  if (lc)
    cublasLtMatrixLayoutDestroy(lc);
  if (lb)
    cublasLtMatrixLayoutDestroy(lb);
  if (la)
    cublasLtMatrixLayoutDestroy(la);
  if (desc)
    cublasLtMatmulDescDestroy(desc);
  return tflops;
}

std::string today() {
  std::time_t now = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

void usage(FILE *out) {
  std::fprintf(out, "usage: weft-calibrate -o FILE [--gpu NAME] [--quick]\n"
                    "  -o FILE     the calibration YAML to write\n"
                    "  --gpu NAME  the GPU type it is for (default: from the "
                    "device name, e.g. H100)\n"
                    "  --quick     fewer GEMM shapes (a smoke test)\n");
}
} // namespace

int main(int argc, char **argv) {
  std::string output, gpu;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-o" && i + 1 < argc)
      output = argv[++i];
    else if (arg == "--gpu" && i + 1 < argc)
      gpu = argv[++i];
    else if (arg == "--quick")
      quick = true;
    else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "weft-calibrate: error: unknown argument '%s'\n",
                   arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (output.empty()) {
    std::fprintf(stderr, "weft-calibrate: error: -o FILE is required\n");
    return 2;
  }
  cudaDeviceProp prop;
  if (!check(cudaGetDeviceProperties(&prop, 0), "device 0"))
    return 1;
  if (gpu.empty())
    for (const char *known : {"H200", "H100", "A100", "B200", "L40S"})
      if (std::strstr(prop.name, known))
        gpu = known;
  if (gpu.empty()) {
    std::fprintf(stderr,
                 "weft-calibrate: error: cannot tell the GPU type of '%s'; "
                 "give --gpu NAME\n",
                 prop.name);
    return 2;
  }
  std::printf("device: %s (%d SMs, %.1f GiB), calibrating as %s\n", prop.name,
              prop.multiProcessorCount, double(prop.totalGlobalMem) / (1 << 30),
              gpu.c_str());

  // GEMMs: the projection shapes of 8B to 405B Llama-like layers per
  // tensor-parallel rank, and tokens from one (decode) to many (prefill).
  std::vector<long> ms =
      quick ? std::vector<long>{1, 128, 2048, 8192}
            : std::vector<long>{1, 8, 32, 128, 512, 2048, 8192, 16384};
  std::vector<std::pair<long, long>> nks =
      quick ? std::vector<std::pair<long, long>>{{8192, 8192}}
            : std::vector<std::pair<long, long>>{{1024, 8192},  {4096, 4096},
                                                 {8192, 8192},  {8192, 28672},
                                                 {28672, 8192}, {16384, 16384}};
  long maxM = *std::max_element(ms.begin(), ms.end());
  long maxN = 0, maxK = 0;
  for (auto [n, k] : nks) {
    maxN = std::max(maxN, n);
    maxK = std::max(maxK, k);
  }
  size_t workspaceBytes = 32ul << 20;
  void *a = nullptr, *b = nullptr, *c = nullptr, *workspace = nullptr;
  cublasLtHandle_t lt = nullptr;
  std::vector<GemmResult> gemms;
  if (check(cudaMalloc(&a, size_t(maxM) * maxK * 2), "alloc A") &&
      check(cudaMalloc(&b, size_t(maxK) * maxN * 2), "alloc B") &&
      check(cudaMalloc(&c, size_t(maxM) * maxN * 2), "alloc C") &&
      check(cudaMalloc(&workspace, workspaceBytes), "alloc workspace") &&
      check(cudaMemset(a, 0, size_t(maxM) * maxK * 2), "zero A") &&
      check(cudaMemset(b, 0, size_t(maxK) * maxN * 2), "zero B") &&
      check(cublasLtCreate(&lt), "cublasLtCreate")) {
    for (auto [n, k] : nks)
      for (long m : ms)
        if (double t =
                timeGemm(lt, workspace, workspaceBytes, m, n, k, a, b, c);
            t > 0)
          gemms.push_back({m, n, k, t});
  }
  if (lt)
    cublasLtDestroy(lt);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cudaFree(workspace);

  // HBM: a 2 GiB device-to-device copy reads and writes every byte.
  double copyTbPerS = 0;
  {
    size_t bytes = 2ul << 30;
    void *src = nullptr, *dst = nullptr;
    if (check(cudaMalloc(&src, bytes), "alloc copy source") &&
        check(cudaMalloc(&dst, bytes), "alloc copy destination")) {
      double ms = timeMs(
          [&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice); },
          5, 7);
      if (check(cudaDeviceSynchronize(), "hbm copy")) {
        copyTbPerS = 2.0 * double(bytes) / (ms * 1e-3) / 1e12;
        std::printf("PASS hbm copy: %.3f ms for 2 GiB, %.2f TB/s\n", ms,
                    copyTbPerS);
      }
    }
    cudaFree(src);
    cudaFree(dst);
  }

  // Launch overhead: back-to-back empty kernels from the host, then the same
  // kernels as nodes of one CUDA graph.
  double launchUs = 0, graphNodeUs = 0;
  {
    const int kernels = 2000;
    double ms = timeMs([] { emptyKernel<<<1, 1>>>(); }, kernels, 5);
    if (check(cudaGetLastError(), "kernel launch") &&
        check(cudaDeviceSynchronize(), "kernel launch")) {
      launchUs = ms * 1e3;
      std::printf("PASS kernel launch: %.2f us\n", launchUs);
    }
    cudaStream_t stream;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (check(cudaStreamCreate(&stream), "stream") &&
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal),
              "graph capture")) {
      for (int i = 0; i < kernels; ++i)
        emptyKernel<<<1, 1, 0, stream>>>();
      if (check(cudaStreamEndCapture(stream, &graph), "graph capture") &&
          check(cudaGraphInstantiate(&exec, graph, 0), "graph instantiate")) {
        double graphMs = timeMs([&] { cudaGraphLaunch(exec, stream); }, 3, 5);
        if (check(cudaDeviceSynchronize(), "graph launch")) {
          graphNodeUs = graphMs * 1e3 / kernels;
          std::printf("PASS graph node: %.2f us\n", graphNodeUs);
        }
      }
    }
    if (exec)
      cudaGraphExecDestroy(exec);
    if (graph)
      cudaGraphDestroy(graph);
  }
  if (gemms.empty() || copyTbPerS <= 0 || launchUs <= 0 || graphNodeUs <= 0) {
    std::printf("FAIL some measurement is missing; %s not written\n",
                output.c_str());
    return 1;
  }
  if (failures) {
    std::printf("FAIL %d measurement(s) failed; %s not written\n", failures,
                output.c_str());
    return 1;
  }

  std::string tmp = output + ".tmp";
  FILE *f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "weft-calibrate: error: cannot write '%s'\n",
                 tmp.c_str());
    return 1;
  }
  std::fprintf(f,
               "# Cost-model constants for %s, written by weft-calibrate on "
               "'%s'.\n"
               "version: 1\ngpu: %s\nmeasured:\n  date: %s\n"
               "  source: >-\n    weft-calibrate on %s (cuBLASLt bf16 GEMMs, "
               "HBM copy, launch and graph-node overhead); attention, "
               "collectives and memory overheads are the defaults, to be "
               "measured separately\n"
               "matmul:\n  points:\n",
               gpu.c_str(), prop.name, gpu.c_str(), today().c_str(), prop.name);
  for (const GemmResult &g : gemms)
    std::fprintf(f, "    - {m: %ld, n: %ld, k: %ld, tflops: %.1f} # measured\n",
                 g.m, g.n, g.k, g.tflops);
  std::fprintf(
      f,
      "hbm:\n  copy_tb_per_s: %.3f # measured: device-to-device copy\n"
      "attention:\n  efficiency: 0.5 # estimate\n"
      "kernel:\n  launch_us: %.2f # measured\n"
      "  graph_node_us: %.2f # measured\n"
      "collectives:\n"
      "  nvlink:\n    base_us: 6.0 # estimate\n"
      "    ring:\n      busbw_efficiency: 0.80 # estimate (H100: 361/450)\n"
      "    tree:\n      busbw_efficiency: 0.70 # estimate\n"
      "  fabric:\n    base_us: 10.0 # estimate\n"
      "    ring:\n      busbw_efficiency: 0.80 # estimate\n"
      "    tree:\n      busbw_efficiency: 0.70 # estimate\n"
      "memory:\n  context_mib: 600 # estimate\n  workspace_mib: 32\n"
      "  nccl_mib: 400 # estimate\n  cuda_graph_mib: 64 # estimate\n",
      copyTbPerS, launchUs, graphNodeUs);
  bool written =
      std::fclose(f) == 0 && std::rename(tmp.c_str(), output.c_str()) == 0;
  if (!written) {
    std::remove(tmp.c_str());
    std::fprintf(stderr, "weft-calibrate: error: cannot write '%s'\n",
                 output.c_str());
    return 1;
  }
  std::printf("PASS wrote %s (%zu GEMM shapes)\n", output.c_str(),
              gemms.size());
  return 0;
}
