// weft-calibrate: measures the constants of weft's cost model on the GPUs it
// runs on (cuBLASLt bf16 GEMMs over a grid of shapes, each call reading its
// weights from HBM as a forward pass does, not from L2; HBM copy bandwidth,
// kernel launch and CUDA-graph node overhead on GPU 0; with two GPUs or
// more, all-reduce over 2, 4 and 8 of them) and writes a calibration
// YAML file (docs/planner.md).
//
//   weft-calibrate -o h100.yaml [--gpu H100] [--quick] [--gpus N]
//                  [--link-gbps G] [--link-latency-us L] [--collectives-only]
//
// The all-reduces run in one process, one communicator per GPU
// (ncclCommInitAll), each call a group over every GPU's stream: bf16 sums in
// place from 4 KiB to 256 MiB, timed with CUDA events per GPU (the median of
// several batches). Each GPU count is timed three ways: NCCL's own choice of
// algorithm captured in a CUDA graph and replayed, as the runtime replays
// its step (these times, less one graph node, go into the file as
// collectives.nvlink.all_reduce, and the smallest one into base_us);
// NCCL_ALGO=Ring and NCCL_ALGO=Tree, set before their communicators are made
// (their fitted bus bandwidths over the link bandwidth become the two
// busbw_efficiency); and NCCL's choice eager, for reference. CollectiveFit.h
// fits the cost model's line to each and writes the file's nvlink section.
// Each GPU count is also timed with the runtime's one-shot all-reduce through
// peer memory (runtime/backends/cuda/PeerAllReduce.h, the same kernel) up to
// the largest payload the runtime gives it; collectives.nvlink.all_reduce
// holds the runtime's path at each size: that kernel's times up to there,
// NCCL's above.
//
// Every measurement prints a PASS or FAIL line; the exit status is non-zero
// if any failed, and then no file is written. With --collectives-only only
// the collectives are measured and the nvlink section of the existing file
// is replaced.
#include "runtime/backends/cuda/PeerAllReduce.h"
#include "tools/weft-calibrate/CollectiveFit.h"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {
using namespace weft::calibrate;

int failures = 0;
/// While set, an error is a WARN line and counted in `warnings` instead:
/// the forced-algorithm runs, whose failure only costs their efficiency.
bool tolerant = false;
int warnings = 0;

void failed(const char *what, const char *message) {
  std::printf("%s %s: %s\n", tolerant ? "WARN" : "FAIL", what, message);
  ++(tolerant ? warnings : failures);
}

bool check(cudaError_t err, const char *what) {
  if (err == cudaSuccess)
    return true;
  failed(what, cudaGetErrorString(err));
  return false;
}

bool check(cublasStatus_t status, const char *what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return true;
  std::string message = "cuBLAS status " + std::to_string(int(status));
  failed(what, message.c_str());
  return false;
}

bool check(ncclResult_t result, const char *what) {
  if (result == ncclSuccess)
    return true;
  failed(what, ncclGetErrorString(result));
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

/// Bytes of weights a timed GEMM cycles through: several times the L2 cache
/// (50 MiB on an H100 or H200), so that each call reads its B from HBM as
/// the runtime's layers do (each weight is read once per forward pass).
constexpr size_t kWeightPoolBytes = 1ul << 30;

/// One bf16 GEMM C[m,n] = A[m,k] * B[k,n] (fp32 accumulation) with the
/// heuristic's first algorithm; 0 TFLOP/s (and a FAIL line) if it cannot run.
/// Successive calls take successive copies of B from `pool`
/// (kWeightPoolBytes).
double timeGemm(cublasLtHandle_t lt, void *workspace, size_t workspaceBytes,
                long m, long n, long k, const void *a, const void *pool,
                void *c) {
  size_t bBytes = (size_t(k) * n * 2 + 255) / 256 * 256;
  size_t copies = std::max<size_t>(1, kWeightPoolBytes / bBytes);
  size_t call = 0;
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
              const void *b =
                  static_cast<const char *>(pool) + (call++ % copies) * bBytes;
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

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

__global__ void fillBf16(__nv_bfloat16 *p, size_t n, float v) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16(v);
}

/// All-reduce payloads per rank: 4 KiB (the fixed cost) to 256 MiB (the
/// bandwidth) by 4x, and by 2x from 1 to 16 MiB (a layer's hidden state at
/// prefill, where the runtime changes from the one-shot kernel to NCCL).
std::vector<size_t> allReduceSizes() {
  std::vector<size_t> sizes;
  for (size_t bytes = 4096; bytes <= (256ul << 20);
       bytes *= bytes >= (1ul << 20) && bytes < (16ul << 20) ? 2 : 4)
    sizes.push_back(bytes);
  return sizes;
}

std::string sizeText(double bytes) {
  char buf[32];
  if (bytes >= (1 << 20))
    std::snprintf(buf, sizeof buf, "%.0f MiB", bytes / (1 << 20));
  else
    std::snprintf(buf, sizeof buf, "%.0f KiB", bytes / 1024);
  return buf;
}

/// The GPUs 0..n-1 of the all-reduces: a stream, a buffer of the largest
/// payload and a pair of timing events each.
struct Devices {
  int count = 0;
  size_t bufferBytes = 0;
  std::vector<cudaStream_t> streams;
  std::vector<void *> buffers;
  std::vector<cudaEvent_t> starts, stops;

  bool create(int n, size_t bytes) {
    count = n;
    bufferBytes = bytes;
    streams.assign(n, nullptr);
    buffers.assign(n, nullptr);
    starts.assign(n, nullptr);
    stops.assign(n, nullptr);
    bool ok = true;
    for (int d = 0; d < n && ok; ++d)
      ok = check(cudaSetDevice(d), "nccl setup: cudaSetDevice") &&
           check(cudaStreamCreateWithFlags(&streams[d], cudaStreamNonBlocking),
                 "nccl setup: stream") &&
           check(cudaMalloc(&buffers[d], bytes), "nccl setup: buffer") &&
           check(cudaMemsetAsync(buffers[d], 0, bytes, streams[d]),
                 "nccl setup: buffer") &&
           check(cudaEventCreate(&starts[d]), "nccl setup: event") &&
           check(cudaEventCreate(&stops[d]), "nccl setup: event");
    cudaSetDevice(0);
    return ok;
  }
  ~Devices() {
    for (int d = 0; d < count; ++d) {
      cudaSetDevice(d);
      if (stops[d])
        cudaEventDestroy(stops[d]);
      if (starts[d])
        cudaEventDestroy(starts[d]);
      cudaFree(buffers[d]);
      if (streams[d])
        cudaStreamDestroy(streams[d]);
    }
    cudaSetDevice(0);
  }
};

/// One all-reduce of `count` bf16 elements in place on each of the first
/// `comms.size()` GPUs, as one group (one thread drives every GPU).
bool allReduce(Devices &devs, const std::vector<ncclComm_t> &comms,
               size_t count, const char *what) {
  bool ok = check(ncclGroupStart(), what);
  for (size_t d = 0; d < comms.size() && ok; ++d)
    ok = check(ncclAllReduce(devs.buffers[d], devs.buffers[d], count,
                             ncclBfloat16, ncclSum, comms[d], devs.streams[d]),
               what);
  // The group is closed even after an error so that NCCL's state is sound.
  return check(ncclGroupEnd(), what) && ok;
}

/// Enqueues one all-reduce of `count` bf16 elements in place on every GPU
/// of a curve.
using IssueAllReduce = std::function<bool(size_t count, const char *what)>;

IssueAllReduce ncclAllReduce(Devices &devs,
                             const std::vector<ncclComm_t> &comms) {
  return [&devs, &comms](size_t count, const char *what) {
    return allReduce(devs, comms, count, what);
  };
}

/// Seconds per call: `launch(d)` enqueues `calls` all-reduces on GPU d's
/// stream (or, for the last d, on every GPU's at once); the median of
/// `reps` timed batches after one warm-up batch. Each GPU's start event is
/// recorded just before its launch and the shortest time counts: the GPUs
/// are started one after another, and all but the last wait in the first
/// call for the last, so that only its time holds no launch skew.
template <typename Launch>
double timeAllReduce(Devices &devs, int ranks, Launch launch, int calls,
                     int reps, const char *what) {
  for (int d = 0; d < ranks; ++d)
    if (!launch(d))
      return 0;
  std::vector<double> samples;
  for (int r = 0; r < reps; ++r) {
    for (int d = 0; d < ranks; ++d)
      if (!check(cudaSetDevice(d), what) ||
          !check(cudaEventRecord(devs.starts[d], devs.streams[d]), what) ||
          !launch(d))
        return 0;
    for (int d = 0; d < ranks; ++d)
      if (!check(cudaSetDevice(d), what) ||
          !check(cudaEventRecord(devs.stops[d], devs.streams[d]), what))
        return 0;
    double shortest = INFINITY;
    for (int d = 0; d < ranks; ++d) {
      float ms = 0;
      if (!check(cudaSetDevice(d), what) ||
          !check(cudaEventSynchronize(devs.stops[d]), what) ||
          !check(cudaEventElapsedTime(&ms, devs.starts[d], devs.stops[d]),
                 what))
        return 0;
      shortest = std::min(shortest, double(ms) * 1e-3 / calls);
    }
    samples.push_back(shortest);
  }
  cudaSetDevice(0);
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

/// Calls per timed batch: enough that small sizes run a few hundred
/// microseconds.
int callsFor(size_t bytes) {
  return bytes <= (1ul << 20) ? 40 : bytes <= (16ul << 20) ? 10 : 3;
}

/// The Curve::algo of the runtime's one-shot all-reduce through peer
/// memory (not an NCCL algorithm).
constexpr const char *kPeerAlgo = "peer";

/// One measured curve: an all-reduce over `ranks` GPUs with NCCL_ALGO=`algo`
/// (empty: NCCL's choice), eager or replayed from a CUDA graph.
struct Curve {
  int ranks = 0;
  std::string algo;
  bool graph = false;
  std::vector<AllReduceSample> samples;
  std::optional<AlphaBeta> fit;
  std::string name() const {
    if (algo == kPeerAlgo)
      return "peer all-reduce " + std::to_string(ranks) + " GPUs graph";
    return "nccl all-reduce " + std::to_string(ranks) + " GPUs " +
           (algo.empty() ? "default" : algo) + (graph ? " graph" : " eager");
  }
};

/// Times every size eagerly (a group per call) or as a CUDA graph of the
/// same calls captured on every GPU's stream, as the runtime captures its
/// step; fills `curve.samples` (empty on a failure, which is printed).
void measureCurve(Devices &devs, const IssueAllReduce &allReduce, Curve &curve,
                  size_t maxBytes = ~size_t(0)) {
  std::string what = curve.name();
  int ranks = curve.ranks;
  for (size_t bytes : allReduceSizes()) {
    if (bytes > maxBytes)
      break;
    size_t count = bytes / sizeof(__nv_bfloat16);
    int calls = callsFor(bytes);
    double seconds = 0;
    if (!curve.graph) {
      seconds = timeAllReduce(
          devs, ranks,
          [&](int d) {
            // A group launches on every GPU: after the last start event.
            for (int i = 0; d == ranks - 1 && i < calls; ++i)
              if (!allReduce(count, what.c_str()))
                return false;
            return true;
          },
          calls, 7, what.c_str());
    } else {
      std::vector<cudaGraph_t> graphs(ranks, nullptr);
      std::vector<cudaGraphExec_t> execs(ranks, nullptr);
      bool ok = true;
      for (int d = 0; d < ranks && ok; ++d)
        ok = check(cudaSetDevice(d), what.c_str()) &&
             check(cudaStreamBeginCapture(devs.streams[d],
                                          cudaStreamCaptureModeThreadLocal),
                   what.c_str());
      for (int i = 0; i < calls && ok; ++i)
        ok = allReduce(count, what.c_str());
      // Every capture is ended, also after a failure, to leave the streams
      // usable.
      for (int d = 0; d < ranks; ++d) {
        cudaSetDevice(d);
        cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
        cudaStreamIsCapturing(devs.streams[d], &status);
        if (status != cudaStreamCaptureStatusNone)
          ok = check(cudaStreamEndCapture(devs.streams[d], &graphs[d]),
                     what.c_str()) &&
               ok;
      }
      for (int d = 0; d < ranks && ok; ++d)
        ok = check(cudaSetDevice(d), what.c_str()) &&
             check(cudaGraphInstantiate(&execs[d], graphs[d], 0), what.c_str());
      if (ok)
        seconds = timeAllReduce(
            devs, ranks,
            [&](int d) {
              return check(cudaSetDevice(d), what.c_str()) &&
                     check(cudaGraphLaunch(execs[d], devs.streams[d]),
                           what.c_str());
            },
            calls, 9, what.c_str());
      for (int d = 0; d < ranks; ++d) {
        cudaSetDevice(d);
        if (execs[d])
          cudaGraphExecDestroy(execs[d]);
        if (graphs[d])
          cudaGraphDestroy(graphs[d]);
      }
      cudaSetDevice(0);
    }
    if (!(seconds > 0)) {
      curve.samples.clear();
      return;
    }
    curve.samples.push_back({double(bytes), seconds});
  }
}

/// Sets the first `count` elements of every GPU's buffer to 1, all-reduces
/// them and checks that each holds the GPU count; leaves the buffers zero.
bool checkSum(Devices &devs, int ranks, const IssueAllReduce &allReduce,
              size_t count, const std::string &what) {
  std::string label = what + ": sum";
  bool ok = true;
  for (int d = 0; d < ranks && ok; ++d) {
    ok = check(cudaSetDevice(d), label.c_str());
    if (ok) {
      fillBf16<<<16, 256, 0, devs.streams[d]>>>(
          static_cast<__nv_bfloat16 *>(devs.buffers[d]), count, 1.0f);
      ok = check(cudaGetLastError(), label.c_str());
    }
  }
  ok = ok && allReduce(count, label.c_str());
  std::vector<__nv_bfloat16> host(count);
  size_t wrong = 0;
  for (int d = 0; d < ranks && ok; ++d) {
    ok =
        check(cudaSetDevice(d), label.c_str()) &&
        check(cudaStreamSynchronize(devs.streams[d]), label.c_str()) &&
        check(cudaMemcpy(host.data(), devs.buffers[d],
                         count * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost),
              label.c_str()) &&
        check(cudaMemsetAsync(devs.buffers[d], 0, count * sizeof(__nv_bfloat16),
                              devs.streams[d]),
              label.c_str());
    for (size_t i = 0; ok && i < count; ++i)
      wrong += __bfloat162float(host[i]) != float(ranks);
  }
  cudaSetDevice(0);
  if (ok && wrong) {
    std::string message = std::to_string(wrong) + " of " +
                          std::to_string(count * ranks) + " sums are not " +
                          std::to_string(ranks);
    failed(label.c_str(), message.c_str());
    return false;
  }
  if (ok)
    std::printf("PASS %s: %zu elements on each GPU sum to %d\n", label.c_str(),
                count, ranks);
  return ok;
}

/// Prints a curve's table (size, time, algorithm and bus bandwidth, the
/// fitted line's time) and its PASS or FAIL line; fits it.
void reportCurve(Curve &curve) {
  std::string what = curve.name();
  if (curve.samples.empty())
    return; // its failure is printed
  curve.fit = fitAllReduce(curve.ranks, curve.samples);
  std::printf("  %-9s %10s %12s %12s %10s\n", "size", "time_us", "algbw_GB/s",
              "busbw_GB/s", "fit_us");
  double peak = 0;
  for (const AllReduceSample &p : curve.samples) {
    double busbw = allReduceBusGbPerS(curve.ranks, p.bytes, p.seconds);
    peak = std::max(peak, busbw);
    std::printf(
        "  %-9s %10.2f %12.2f %12.2f %10.2f\n", sizeText(p.bytes).c_str(),
        p.seconds * 1e6, p.bytes / p.seconds / 1e9, busbw,
        curve.fit ? alphaBetaSeconds(curve.ranks, p.bytes, *curve.fit) * 1e6
                  : 0.0);
  }
  if (!curve.fit) {
    failed(what.c_str(), "the times fit no line of positive fixed cost and "
                         "bandwidth");
    return;
  }
  std::printf("PASS %s: fixed %.2f us, busbw %.1f GB/s fitted (peak %.1f), "
              "fit within %.0f%% of every size\n",
              what.c_str(), curve.fit->fixedUs, curve.fit->busGbPerS, peak,
              100 * worstRelativeError(curve.ranks, curve.samples, *curve.fit));
}

/// Restores an environment variable on leaving the scope.
class EnvSetting {
public:
  EnvSetting(const char *name, const std::string &value) : name(name) {
    if (const char *old = std::getenv(name))
      saved = old;
    if (!value.empty())
      setenv(name, value.c_str(), 1);
  }
  ~EnvSetting() {
    if (saved)
      setenv(name, saved->c_str(), 1);
    else
      unsetenv(name);
  }

private:
  const char *name;
  std::optional<std::string> saved;
};

/// The runtime's one-shot all-reduce through peer memory over GPUs
/// 0..ranks-1 (PeerAllReduce.h: the same kernel), replayed from a CUDA graph
/// like NCCL's graph curve, up to the largest payload the runtime gives it.
/// Empty where a pair of the GPUs has no peer access (the runtime then
/// takes NCCL).
std::optional<Curve> measurePeerCurve(Devices &devs, int ranks) {
  using namespace weft::runtime::cuda;
  Curve curve;
  curve.ranks = ranks;
  curve.algo = kPeerAlgo;
  curve.graph = true;
  std::string what = curve.name();
  for (int d = 0; d < ranks; ++d)
    for (int e = 0; e < ranks; ++e) {
      int access = 0;
      if (d != e &&
          (cudaDeviceCanAccessPeer(&access, d, e) != cudaSuccess || !access)) {
        std::printf("SKIP %s: GPU %d cannot access GPU %d's memory\n",
                    what.c_str(), d, e);
        return std::nullopt;
      }
    }
  PeerGroup layout;
  layout.size = ranks;
  setPeerLayout(layout, kPeerDefaultLimit);
  uint64_t limit = layout.limit;
  std::vector<void *> buffers(ranks, nullptr);
  std::vector<uint32_t *> epochs(ranks, nullptr);
  uint32_t *errorHost = nullptr, *errorDevice = nullptr;
  bool ok = check(cudaHostAlloc(reinterpret_cast<void **>(&errorHost), 4,
                                cudaHostAllocMapped),
                  what.c_str()) &&
            check(cudaHostGetDevicePointer(
                      reinterpret_cast<void **>(&errorDevice), errorHost, 0),
                  what.c_str());
  if (ok)
    *errorHost = 0;
  for (int d = 0; d < ranks && ok; ++d) {
    ok =
        check(cudaSetDevice(d), what.c_str()) &&
        check(cudaMalloc(&buffers[d], peerBufferBytes(layout)), what.c_str()) &&
        check(cudaMemset(buffers[d], 0, kPeerFlagBytes), what.c_str()) &&
        check(
            cudaMalloc(reinterpret_cast<void **>(&epochs[d]), kPeerBlocks * 4),
            what.c_str()) &&
        check(cudaMemset(epochs[d], 0, kPeerBlocks * 4), what.c_str());
    for (int e = 0; e < ranks && ok; ++e)
      if (e != d) {
        cudaError_t err = cudaDeviceEnablePeerAccess(e, 0);
        if (err == cudaErrorPeerAccessAlreadyEnabled) {
          cudaGetLastError();
          err = cudaSuccess;
        }
        ok = check(err, what.c_str());
      }
    ok = ok && check(cudaDeviceSynchronize(), what.c_str());
  }
  std::vector<PeerGroup> views(ranks, layout);
  for (int d = 0; d < ranks; ++d) {
    views[d].self = d;
    for (int e = 0; e < ranks; ++e)
      views[d].buffers[e] = buffers[e];
    views[d].epochs = epochs[d];
    views[d].error = errorDevice;
    views[d].timeoutNs = 10'000'000'000ull;
  }
  IssueAllReduce issue = [&](size_t count, const char *label) {
    for (int d = 0; d < ranks; ++d)
      if (!check(cudaSetDevice(d), label) ||
          !check(launchPeerAllReduce(views[d], PeerDType::BF16, devs.buffers[d],
                                     devs.buffers[d], int64_t(count),
                                     devs.streams[d]),
                 label))
        return false;
    return true;
  };
  std::optional<Curve> result;
  if (ok && checkSum(devs, ranks, issue, allReduceSizes().front() / 2, what)) {
    std::printf("%s (up to %s, the runtime's limit):\n", what.c_str(),
                sizeText(double(limit)).c_str());
    measureCurve(devs, issue, curve, limit);
    if (*errorHost)
      failed(what.c_str(), "a launch timed out waiting for another GPU");
    else if (!curve.samples.empty())
      result = curve;
    reportCurve(curve);
  }
  for (int d = 0; d < ranks; ++d) {
    cudaSetDevice(d);
    cudaDeviceSynchronize();
    cudaFree(buffers[d]);
    cudaFree(epochs[d]);
  }
  cudaSetDevice(0);
  if (errorHost)
    cudaFreeHost(errorHost);
  return result;
}

/// Every curve over 2, 4, ... GPUs up to `gpus`: NCCL's default algorithm
/// eager and captured in a graph, and Ring and Tree forced eager.
std::vector<Curve> measureCollectives(int gpus) {
  std::vector<Curve> curves;
  size_t maxBytes = allReduceSizes().back();
  Devices devs;
  if (!devs.create(gpus, maxBytes))
    return curves;
  for (int ranks = 2; ranks <= gpus; ranks *= 2) {
    for (const char *algo : {"", "Ring", "Tree"}) {
      // NCCL reads NCCL_ALGO when a communicator is made; a forced
      // algorithm that NCCL refuses costs only its efficiency.
      EnvSetting setting("NCCL_ALGO", algo);
      tolerant = *algo != '\0';
      int warned = warnings;
      std::string what = "nccl all-reduce " + std::to_string(ranks) + " GPUs " +
                         (*algo ? algo : "default");
      std::vector<ncclComm_t> comms(ranks, nullptr);
      std::vector<int> ids(ranks);
      for (int d = 0; d < ranks; ++d)
        ids[d] = d;
      if (check(ncclCommInitAll(comms.data(), ranks, ids.data()),
                (what + ": ncclCommInitAll").c_str()) &&
          checkSum(devs, ranks, ncclAllReduce(devs, comms),
                   allReduceSizes().front() / 2, what)) {
        for (bool graph : {false, true}) {
          if (graph && *algo)
            continue; // the forced ones give bandwidths only
          Curve curve;
          curve.ranks = ranks;
          curve.algo = algo;
          curve.graph = graph;
          std::printf("%s:\n", curve.name().c_str());
          measureCurve(devs, ncclAllReduce(devs, comms), curve);
          reportCurve(curve);
          curves.push_back(curve);
        }
      }
      for (ncclComm_t c : comms)
        if (c)
          ncclCommDestroy(c);
      tolerant = false;
      if (warnings > warned)
        std::printf("WARN %s: NCCL_ALGO=%s did not run; its efficiency comes "
                    "from the default algorithm's\n",
                    what.c_str(), algo);
    }
    if (std::optional<Curve> peer = measurePeerCurve(devs, ranks))
      curves.push_back(*peer);
  }
  return curves;
}

NvlinkResult nvlinkResult(const std::vector<Curve> &curves, double graphNodeUs,
                          double linkGbPerS, double latencyUs) {
  NvlinkResult r;
  std::vector<GraphCurve> graphs;
  std::vector<AlphaBeta> defaults, rings, trees;
  // The runtime's all-reduce: the one-shot peer kernel up to its limit.
  std::map<int, const Curve *> peers;
  for (const Curve &c : curves)
    if (c.algo == kPeerAlgo && !c.samples.empty())
      peers[c.ranks] = &c;
  for (const Curve &c : curves) {
    if (!c.fit || c.algo == kPeerAlgo)
      continue;
    if (c.graph && peers.count(c.ranks)) {
      double limit = double(weft::runtime::cuda::kPeerDefaultLimit);
      r.peerLimits[c.ranks] = limit;
      graphs.push_back(
          {c.ranks, runtimeSamples(c.samples, peers[c.ranks]->samples, limit),
           *c.fit});
    } else if (c.graph) {
      graphs.push_back({c.ranks, c.samples, *c.fit});
    } else if (c.algo.empty()) {
      defaults.push_back(*c.fit);
    } else {
      (c.algo == "Ring" ? rings : trees).push_back(*c.fit);
    }
  }
  if (graphs.empty())
    return r;
  r.measured = true;
  r.nv = nvlinkConstants(graphs, graphNodeUs, latencyUs);
  r.fewestRanks = graphs.front().ranks;
  auto efficiency = [&](const std::vector<AlphaBeta> &forced, const char *algo,
                        double &out, std::string &how) {
    // A forced algorithm that did not run takes the default's bandwidth.
    const std::vector<AlphaBeta> &used = forced.empty() ? defaults : forced;
    if (used.empty())
      return; // the estimate stays
    double sum = 0;
    for (const AlphaBeta &f : used)
      sum += f.busGbPerS;
    out = busbwEfficiency(used, linkGbPerS);
    std::string source = forced.empty()
                             ? std::string("NCCL's default algorithm; "
                                           "NCCL_ALGO=") +
                                   algo + " did not run"
                             : std::string("NCCL_ALGO=") + algo;
    char text[160];
    std::snprintf(text, sizeof text,
                  "measured: %.0f GB/s fitted bus bandwidth (%s) over %.0f "
                  "GB/s",
                  sum / double(used.size()), source.c_str(), linkGbPerS);
    how = text;
  };
  efficiency(rings, "Ring", r.ringEfficiency, r.ringHow);
  efficiency(trees, "Tree", r.treeEfficiency, r.treeHow);
  return r;
}

/// Values in [-1, 1) from a hash of the index: a GEMM on zeros or on a
/// constant draws less power, and so clocks higher, than on real weights.
__global__ void fillNoise(__nv_bfloat16 *p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = __float2bfloat16(float(h >> 8) / float(1 << 23) - 1.0f);
  }
}

/// What GPU 0 alone measures.
struct SingleGpu {
  std::vector<GemmResult> gemms;
  double copyTbPerS = 0, launchUs = 0, graphNodeUs = 0;
};

SingleGpu measureSingleGpu(bool quick) {
  SingleGpu r;
  // GEMMs: the projection shapes of 8B to 405B Llama-like layers per
  // tensor-parallel rank, and tokens from one (decode) to many (prefill).
  std::vector<long> ms =
      quick ? std::vector<long>{1, 128, 2048, 8192}
            : std::vector<long>{1, 8, 32, 128, 512, 2048, 8192, 16384};
  // Small ones too: a 1B model's layers split over 2 or 4 ranks.
  std::vector<std::pair<long, long>> nks =
      quick ? std::vector<std::pair<long, long>>{{8192, 8192}}
            : std::vector<std::pair<long, long>>{
                  {512, 2048},   {2048, 512},  {1024, 2048},  {2048, 1024},
                  {2048, 2048},  {4096, 2048}, {2048, 4096},  {8192, 2048},
                  {2048, 8192},  {1024, 4096}, {4096, 1024},  {1024, 8192},
                  {4096, 4096},  {8192, 8192}, {8192, 28672}, {28672, 8192},
                  {16384, 16384}};
  long maxM = *std::max_element(ms.begin(), ms.end());
  long maxN = 0, maxK = 0;
  for (auto [n, k] : nks) {
    maxN = std::max(maxN, n);
    maxK = std::max(maxK, k);
  }
  size_t workspaceBytes = 32ul << 20;
  void *a = nullptr, *b = nullptr, *c = nullptr, *workspace = nullptr;
  cublasLtHandle_t lt = nullptr;
  size_t poolBytes = std::max(kWeightPoolBytes, size_t(maxK) * maxN * 2);
  if (check(cudaMalloc(&a, size_t(maxM) * maxK * 2), "alloc A") &&
      check(cudaMalloc(&b, poolBytes), "alloc B") &&
      check(cudaMalloc(&c, size_t(maxM) * maxN * 2), "alloc C") &&
      check(cudaMalloc(&workspace, workspaceBytes), "alloc workspace") &&
      (fillNoise<<<1024, 256>>>(static_cast<__nv_bfloat16 *>(a),
                                size_t(maxM) * maxK),
       check(cudaGetLastError(), "fill A")) &&
      (fillNoise<<<1024, 256>>>(static_cast<__nv_bfloat16 *>(b), poolBytes / 2),
       check(cudaGetLastError(), "fill B")) &&
      check(cublasLtCreate(&lt), "cublasLtCreate")) {
    for (auto [n, k] : nks)
      for (long m : ms)
        if (double t =
                timeGemm(lt, workspace, workspaceBytes, m, n, k, a, b, c);
            t > 0)
          r.gemms.push_back({m, n, k, t});
  }
  if (lt)
    cublasLtDestroy(lt);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cudaFree(workspace);

  // HBM: a 2 GiB device-to-device copy reads and writes every byte.
  {
    size_t bytes = 2ul << 30;
    void *src = nullptr, *dst = nullptr;
    if (check(cudaMalloc(&src, bytes), "alloc copy source") &&
        check(cudaMalloc(&dst, bytes), "alloc copy destination")) {
      double ms = timeMs(
          [&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice); },
          5, 7);
      if (check(cudaDeviceSynchronize(), "hbm copy")) {
        r.copyTbPerS = 2.0 * double(bytes) / (ms * 1e-3) / 1e12;
        std::printf("PASS hbm copy: %.3f ms for 2 GiB, %.2f TB/s\n", ms,
                    r.copyTbPerS);
      }
    }
    cudaFree(src);
    cudaFree(dst);
  }

  // Launch overhead: back-to-back empty kernels from the host, then the same
  // kernels as nodes of one CUDA graph.
  {
    const int kernels = 2000;
    double ms = timeMs([] { emptyKernel<<<1, 1>>>(); }, kernels, 5);
    if (check(cudaGetLastError(), "kernel launch") &&
        check(cudaDeviceSynchronize(), "kernel launch")) {
      r.launchUs = ms * 1e3;
      std::printf("PASS kernel launch: %.2f us\n", r.launchUs);
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
          r.graphNodeUs = graphMs * 1e3 / kernels;
          std::printf("PASS graph node: %.2f us\n", r.graphNodeUs);
        }
      }
    }
    if (exec)
      cudaGraphExecDestroy(exec);
    if (graph)
      cudaGraphDestroy(graph);
  }
  return r;
}

/// The lines of a text file; none if it cannot be read.
std::optional<std::vector<std::string>> readLines(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

/// Writes `text` to `path` through a temporary file renamed over it, so
/// that a failed write leaves nothing half-written.
bool writeFile(const std::string &path, const std::string &text) {
  std::string tmp = path + ".tmp";
  FILE *f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "weft: error: cannot write '%s'\n", tmp.c_str());
    return false;
  }
  bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  written = std::fclose(f) == 0 && written &&
            std::rename(tmp.c_str(), path.c_str()) == 0;
  if (!written) {
    std::remove(tmp.c_str());
    std::fprintf(stderr, "weft: error: cannot write '%s'\n", path.c_str());
  }
  return written;
}

/// A number argument: all of `text`, finite, at least `min` (above it if
/// `strict`).
std::optional<double> numberArg(const char *text, double min, bool strict) {
  char *end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v < min ||
      (strict && v == min))
    return std::nullopt;
  return v;
}

void usage(FILE *out) {
  std::fprintf(
      out,
      "usage: weft-calibrate -o FILE [--gpu NAME] [--quick] [--gpus N]\n"
      "                      [--link-gbps G] [--link-latency-us L]\n"
      "                      [--collectives-only]\n"
      "  -o FILE               the calibration YAML to write\n"
      "  --gpu NAME            the GPU type it is for (default: from the "
      "device name, e.g. H100)\n"
      "  --quick               fewer GEMM shapes (a smoke test)\n"
      "  --gpus N              all-reduce over 2, 4, ... up to N GPUs "
      "(default: all\n"
      "                        visible, at most 8; 1: no collectives)\n"
      "  --link-gbps G         the NVLink bandwidth per GPU and direction "
      "that the\n"
      "                        topology gives the cost model, GB/s (default "
      "450,\n"
      "                        NVLink 4); busbw_efficiency = bus bandwidth / "
      "G\n"
      "  --link-latency-us L   the topology's NVLink latency per hop "
      "(default 1.0),\n"
      "                        taken out of base_us\n"
      "  --collectives-only    measure only the collectives and replace "
      "the\n"
      "                        collectives.nvlink section of the existing "
      "FILE\n");
}
} // namespace

int main(int argc, char **argv) {
  std::string output, gpu;
  bool quick = false, collectivesOnly = false;
  int gpusWanted = 0; // 0: all visible, at most 8
  double linkGbPerS = 450, latencyUs = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool hasValue = i + 1 < argc;
    if (arg == "-o" && hasValue)
      output = argv[++i];
    else if (arg == "--gpu" && hasValue)
      gpu = argv[++i];
    else if (arg == "--quick")
      quick = true;
    else if (arg == "--collectives-only")
      collectivesOnly = true;
    else if (arg == "--gpus" && hasValue) {
      std::optional<double> v = numberArg(argv[++i], 1, false);
      if (!v || *v != std::floor(*v) || *v > 8) {
        std::fprintf(stderr,
                     "weft: error: --gpus must be a whole number "
                     "from 1 to 8, got '%s'\n",
                     argv[i]);
        return 2;
      }
      gpusWanted = int(*v);
    } else if ((arg == "--link-gbps" || arg == "--link-latency-us") &&
               hasValue) {
      bool gbps = arg == "--link-gbps";
      std::optional<double> v = numberArg(argv[++i], 0, gbps);
      if (!v) {
        std::fprintf(stderr,
                     "weft: error: %s must be a %s number, "
                     "got '%s'\n",
                     arg.c_str(), gbps ? "positive" : "non-negative", argv[i]);
        return 2;
      }
      (gbps ? linkGbPerS : latencyUs) = *v;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      bool needsValue = arg == "-o" || arg == "--gpu" || arg == "--gpus" ||
                        arg == "--link-gbps" || arg == "--link-latency-us";
      std::fprintf(stderr,
                   needsValue ? "weft: error: '%s' needs a value\n"
                              : "weft: error: unknown argument "
                                "'%s'\n",
                   arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (output.empty()) {
    std::fprintf(stderr, "weft: error: -o FILE is required\n");
    return 2;
  }
  // --collectives-only edits an existing file: it is checked before any
  // GPU work.
  std::vector<std::string> existing;
  double graphNodeUs = 0;
  if (collectivesOnly) {
    if (gpusWanted == 1) {
      std::fprintf(stderr, "weft: error: --collectives-only needs "
                           "at least 2 GPUs, --gpus is 1\n");
      return 2;
    }
    std::optional<std::vector<std::string>> lines = readLines(output);
    if (!lines) {
      std::fprintf(stderr,
                   "weft: error: --collectives-only: cannot read "
                   "'%s' (it updates an existing calibration file)\n",
                   output.c_str());
      return 2;
    }
    existing = *lines;
    std::optional<double> node = graphNodeUsOf(existing);
    if (!findNvlinkSection(existing) || !node) {
      std::fprintf(stderr,
                   "weft: error: --collectives-only: '%s' has no "
                   "%s\n",
                   output.c_str(),
                   node ? "collectives.nvlink section"
                        : "kernel.graph_node_us (the graph node the fixed "
                          "costs are measured without)");
      return 2;
    }
    graphNodeUs = *node;
  }
  int visible = 0;
  if (!check(cudaGetDeviceCount(&visible), "device count"))
    return 1;
  if (visible < 1) {
    std::printf("FAIL device count: no CUDA device is visible\n");
    return 1;
  }
  int gpus = gpusWanted ? gpusWanted : std::min(visible, 8);
  if (gpus > visible) {
    std::fprintf(stderr,
                 "weft: error: --gpus %d, but %d GPU(s) are "
                 "visible\n",
                 gpus, visible);
    return 2;
  }
  if (collectivesOnly && gpus < 2) {
    std::fprintf(stderr,
                 "weft: error: --collectives-only needs at least 2 "
                 "GPUs, %d visible\n",
                 visible);
    return 2;
  }
  cudaDeviceProp prop;
  if (!check(cudaGetDeviceProperties(&prop, 0), "device 0"))
    return 1;
  if (gpu.empty())
    for (const char *known : {"H200", "H100", "A100", "B200", "L40S"})
      if (std::strstr(prop.name, known))
        gpu = known;
  if (gpu.empty() && !collectivesOnly) {
    std::fprintf(stderr,
                 "weft: error: cannot tell the GPU type of '%s'; "
                 "give --gpu NAME\n",
                 prop.name);
    return 2;
  }
  std::printf("device: %s (%d SMs, %.1f GiB), calibrating as %s; %d GPU(s) "
              "visible\n",
              prop.name, prop.multiProcessorCount,
              double(prop.totalGlobalMem) / (1 << 30),
              collectivesOnly ? "in the file" : gpu.c_str(), visible);

  SingleGpu single;
  if (!collectivesOnly) {
    single = measureSingleGpu(quick);
    graphNodeUs = single.graphNodeUs;
  }

  std::vector<Curve> curves;
  if (gpus >= 2) {
    int version = 0;
    ncclGetVersion(&version);
    const char *algo = std::getenv("NCCL_ALGO");
    const char *nvls = std::getenv("NCCL_NVLS_ENABLE");
    std::printf("collectives: NCCL %d.%d.%d over %d GPU(s); NCCL_ALGO=%s, "
                "NCCL_NVLS_ENABLE=%s; the cost model's link: %.1f GB/s per "
                "direction, %.2f us per hop (--link-gbps, "
                "--link-latency-us)\n",
                version / 10000, version / 100 % 100, version % 100, gpus,
                algo ? algo : "(unset)", nvls ? nvls : "(unset)", linkGbPerS,
                latencyUs);
    curves = measureCollectives(gpus);
  } else {
    std::printf("SKIP collectives: one GPU to use (%d visible, --gpus %d); "
                "collectives.nvlink keeps the estimates\n",
                visible, gpus);
  }
  NvlinkResult nvlink =
      nvlinkResult(curves, graphNodeUs, linkGbPerS, latencyUs);

  bool missing =
      (gpus >= 2 && !nvlink.measured) ||
      (!collectivesOnly && (single.gemms.empty() || single.copyTbPerS <= 0 ||
                            single.launchUs <= 0 || single.graphNodeUs <= 0));
  if (missing) {
    std::printf("FAIL some measurement is missing; %s not written\n",
                output.c_str());
    return 1;
  }
  if (failures) {
    std::printf("FAIL %d measurement(s) failed; %s not written\n", failures,
                output.c_str());
    return 1;
  }
  std::string section = nvlinkSection(nvlink, graphNodeUs, latencyUs);

  if (collectivesOnly) {
    if (!writeFile(output, withNvlinkSection(existing, section)))
      return 1;
    std::printf("PASS wrote %s (collectives.nvlink replaced)\n",
                output.c_str());
    return 0;
  }

  std::ostringstream out;
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "# Cost-model constants for %s, written by weft-calibrate on '%s'.\n"
      "version: 1\ngpu: %s\nmeasured:\n  date: %s\n"
      "  source: >-\n    weft-calibrate on %s (cuBLASLt bf16 GEMMs, HBM copy, "
      "launch and graph-node overhead%s); attention, %smemory overheads are "
      "the defaults, to be measured separately\n"
      "matmul:\n  points:\n",
      gpu.c_str(), prop.name, gpu.c_str(), today().c_str(), prop.name,
      nvlink.measured ? ", NCCL all-reduce" : "",
      nvlink.measured ? "the fabric tier and " : "collectives and ");
  out << buf;
  for (const GemmResult &g : single.gemms) {
    std::snprintf(buf, sizeof buf,
                  "    - {m: %ld, n: %ld, k: %ld, tflops: %.1f} # measured\n",
                  g.m, g.n, g.k, g.tflops);
    out << buf;
  }
  std::snprintf(
      buf, sizeof buf,
      "hbm:\n  copy_tb_per_s: %.3f # measured: device-to-device copy\n"
      "attention:\n  efficiency: 0.5 # estimate\n"
      "kernel:\n  launch_us: %.2f # measured\n"
      "  graph_node_us: %.2f # measured\n"
      "collectives:\n",
      single.copyTbPerS, single.launchUs, single.graphNodeUs);
  out << buf << section
      << "  fabric:\n    base_us: 10.0 # estimate\n"
         "    ring:\n      busbw_efficiency: 0.80 # estimate\n"
         "    tree:\n      busbw_efficiency: 0.70 # estimate\n"
         "memory:\n  context_mib: 600 # estimate\n  workspace_mib: 32\n"
         "  nccl_mib: 400 # estimate\n  cuda_graph_mib: 64 # estimate\n";
  if (!writeFile(output, out.str()))
    return 1;
  std::printf("PASS wrote %s (%zu GEMM shapes%s)\n", output.c_str(),
              single.gemms.size(), nvlink.measured ? ", NCCL all-reduce" : "");
  return 0;
}
