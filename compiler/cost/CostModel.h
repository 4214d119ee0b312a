// The one cost model of weft: per-op roofline with calibrated GEMM rates,
// alpha-beta collectives per link tier, and the pipeline bubble; it predicts
// memory per GPU, prefill latency and decode time per token of a layout.
// `weft plan` and `weft compile --parallel auto` both use it
// (docs/planner.md gives the formulas).
#ifndef WEFT_COMPILER_COST_COSTMODEL_H
#define WEFT_COMPILER_COST_COSTMODEL_H

#include "compiler/cost/Calibration.h"
#include "compiler/topology/Topology.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::weft::cost {

//===----------------------------------------------------------------------===//
// Hardware terms (each unit-tested against hand-computed values)
//===----------------------------------------------------------------------===//

/// The achieved GEMM rate for M x N x K in a model's run, TFLOP/s: the grid
/// rate below times the calibration's sustained efficiency.
double gemmTflops(const Calibration &cal, double m, double n, double k);
/// The calibration grid's rate for M x N x K, TFLOP/s: the points of the
/// (N, K) nearest in log space, interpolated linearly in log2(M) and clamped
/// at the smallest and largest M.
double gridTflops(const Calibration &cal, double m, double n, double k);

/// Roofline time of a GEMM that moves `bytes` to or from HBM: the larger of
/// its FLOP time at the achieved rate and its memory time.
double gemmSeconds(const Calibration &cal, double m, double n, double k,
                   double bytes);

/// Time to move `bytes` to or from HBM at the calibrated copy bandwidth.
double memorySeconds(const Calibration &cal, double bytes);

enum class LinkTier { NVLink, Fabric };

/// One GPU's bandwidth into a tier, one direction, GB/s: the intra-node
/// link's, or the node's NICs shared by its GPUs.
double linkGbPerS(const Topology &topo, LinkTier tier);
/// The tier's small-message latency per hop, microseconds (the topology's).
double linkLatencyUs(const Topology &topo, LinkTier tier);

enum class Algorithm { Ring, Tree };

/// The alpha-beta time of an all-reduce of `bytes` (each rank's payload)
/// over `ranks` GPUs: base + hops * latency + bytes * 2(n-1)/n / busbw, with
/// 2(n-1) hops for a ring and 2 ceil(log2 n) for a tree, busbw the
/// algorithm's efficiency times the link bandwidth; the overload without an
/// algorithm picks the faster. Where the calibration measured all-reduces
/// over `ranks` GPUs, both give measuredAllReduceSeconds instead.
double allReduceSeconds(const Calibration &cal, const Topology &topo,
                        LinkTier tier, int64_t ranks, double bytes,
                        Algorithm algorithm);
double allReduceSeconds(const Calibration &cal, const Topology &topo,
                        LinkTier tier, int64_t ranks, double bytes);

/// The all-reduce time of `bytes` over `ranks` GPUs from the tier's
/// measured points for that GPU count (none if it has none): linear in
/// bytes between two measured sizes, the smallest size's time below them
/// and the largest size's bandwidth above.
std::optional<double> measuredAllReduceSeconds(const LinkCalibration &link,
                                               int64_t ranks, double bytes);

/// An all-gather whose result is `bytes`: a ring, (n-1) hops, (n-1)/n of the
/// result through each link.
double allGatherSeconds(const Calibration &cal, const Topology &topo,
                        LinkTier tier, int64_t ranks, double bytes);

/// One point-to-point transfer of `bytes` (pipeline send/recv).
double sendRecvSeconds(const Calibration &cal, const Topology &topo,
                       LinkTier tier, double bytes);

/// A byte count for people: `93.1 GiB`, `146.2 KiB`.
std::string formatBytes(double bytes);

/// The idle share of a pipeline of `pp` equal stages fed `microbatches`
/// micro-batches: (pp - 1) / (microbatches + pp - 1).
double pipelineBubble(int64_t pp, int64_t microbatches);

//===----------------------------------------------------------------------===//
// Layouts and predictions
//===----------------------------------------------------------------------===//

struct Layout {
  int64_t tp = 1, pp = 1, dp = 1, microbatches = 1;
  int64_t gpus() const { return tp * pp * dp; }
};

/// What is served: `batch` sequences of `prompt` tokens, `gen` generated.
struct Workload {
  int64_t batch = 1, prompt = 1, gen = 0;
};

/// Device memory of one GPU, bytes (the fullest pipeline stage's).
struct MemoryUse {
  double weights = 0, kvCache = 0, activations = 0, workspace = 0, nccl = 0,
         cudaGraph = 0, context = 0;
  double total() const {
    return weights + kvCache + activations + workspace + nccl + cudaGraph +
           context;
  }
};

/// Where the time of a phase goes, seconds along the critical path.
struct TimeSplit {
  double gemm = 0, attention = 0, memory = 0, collectives = 0, p2p = 0,
         overhead = 0, bubble = 0;
  double weightStreaming = 0; // the part of gemm bound by reading weights
  double kvReads = 0;         // the part of attention reading the KV cache
};

struct Prediction {
  Layout layout;
  MemoryUse memory;
  std::vector<double> stageWeightBytes; // per pipeline stage, per rank
  double capacityBytes = 0;
  bool fits = false;
  std::string reason; // why it is rejected, empty if it fits
  double prefillSeconds = 0, decodeSecondsPerToken = 0, requestSeconds = 0;
  double prefillCommShare = 0, decodeCommShare = 0, bubble = 0;
  double decodeTokensPerS = 0, tokensPerSPerGpu = 0, clusterTokensPerS = 0;
  /// The most sequences of prompt + gen tokens whose KV cache fits beside
  /// the weights and the rest, all replicas together.
  int64_t maxSequences = 0;
  TimeSplit prefill, decode;
};

/// The costs of one tensor-parallel rank's fused graph, bound for batch 1
/// and the prompt length: built once per tp degree, then evaluated for any
/// pp, dp, micro-batch count and batch.
class GraphCosts {
public:
  /// Reads the ops of `func` (a per-rank graph for `tp` ranks). `prompt` is
  /// the sequence length it was bound for. Fails (with a diagnostic) if the
  /// graph cannot be planned.
  static FailureOr<GraphCosts> build(func::FuncOp func, int64_t tp,
                                     int64_t prompt);

  int64_t tp() const { return tpDegree; }
  /// Attention ops: the layer count pipeline cuts are chosen from.
  int64_t layers() const { return numLayers; }
  /// Total weight bytes of one rank with no pipeline (at the graph's dtypes).
  double weightBytes() const;

  /// Predicts `layout` (whose tp must be this graph's) for `work`.
  Prediction predict(const Layout &layout, const Workload &work,
                     const Topology &topo, const Calibration &cal) const;

  struct Op {
    enum class Kind { Gemm, Attention, Memory, AllReduce, AllGather };
    Kind kind = Kind::Memory;
    double rows = 0, n = 0, k = 0; // GEMM M (batch 1) x N x K
    double actBytes = 0;           // activations read + written, batch 1
    double weightBytes = 0;        // weights read (each call)
    double commBytes = 0;          // collective payload, batch 1
    // Attention: heads, kv heads, query and key lengths, head dims.
    double heads = 0, kvHeads = 0, seq = 0, keys = 0, dim = 0, vDim = 0;
    double elemBytes = 0;
    bool causal = false;
    bool kernel = true; // launches a kernel of its own (not fused away)
  };
  /// One weight tensor of the rank and the ops (indices) that read it.
  struct Weight {
    double bytes = 0;
    std::vector<int64_t> users;
  };

  const std::vector<Op> &ops() const { return opCosts; }

private:
  /// The pipeline stage of each op for `pp`, as compile assigns them.
  const std::vector<int64_t> &stagesFor(int64_t pp) const;

  int64_t tpDegree = 1, prompt = 1, numLayers = 0;
  std::vector<Op> opCosts;
  std::vector<Weight> weights;
  double arenaBytes = 0; // the activation arena at batch 1, no pipeline
  func::FuncOp graph;    // kept for stage assignment
  std::vector<Operation *> opList;
  // Bytes of each op's results read by later ops (by op index), batch 1.
  std::vector<std::vector<std::pair<int64_t, double>>> readers;
  mutable std::map<int64_t, std::vector<int64_t>> stageCache;
};

} // namespace mlir::weft::cost

#endif // WEFT_COMPILER_COST_COSTMODEL_H
