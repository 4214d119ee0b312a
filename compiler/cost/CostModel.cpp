// The cost model: hardware terms, the per-rank graph's op costs, and the
// prediction of a layout (memory, prefill, decode) from them.
#include "compiler/cost/CostModel.h"

#include "compiler/artifact/PlanBuilder.h"
#include "dialects/Weft/WeftOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::weft;
using namespace mlir::weft::cost;

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kMiB = 1024.0 * 1024.0;
} // namespace

//===----------------------------------------------------------------------===//
// Hardware terms
//===----------------------------------------------------------------------===//

double cost::gemmTflops(const Calibration &cal, double m, double n, double k) {
  return gridTflops(cal, m, n, k) * cal.gemmSustainedEfficiency;
}

double cost::gridTflops(const Calibration &cal, double m, double n, double k) {
  assert(!cal.gemm.empty() && "a calibration has at least one GEMM point");
  // The (n, k) of the calibration nearest to the query in log space: the
  // least |log2(p.n / n)| + |log2(p.k / k)|, that is the least product of
  // the two ratios taken above 1 (no logarithms: the planner asks this for
  // every GEMM of every layout).
  auto ratio = [](double a, double b) { return a > b ? a / b : b / a; };
  const GemmPoint *nearest = &cal.gemm.front();
  double best = INFINITY;
  for (const GemmPoint &p : cal.gemm) {
    double d = ratio(p.n, n) * ratio(p.k, k);
    if (d < best) {
      best = d;
      nearest = &p;
    }
  }
  // Its points on either side of m (the file's points need no order),
  // interpolated in log2(m); the row's end beyond either side.
  const GemmPoint *below = nullptr, *above = nullptr;
  for (const GemmPoint &p : cal.gemm) {
    if (p.n != nearest->n || p.k != nearest->k)
      continue;
    if (p.m <= m && (!below || p.m > below->m))
      below = &p;
    if (p.m >= m && (!above || p.m < above->m))
      above = &p;
  }
  if (!below)
    return above->tflops;
  if (!above || below->m == above->m)
    return below->tflops;
  double t = std::log2(m / below->m) / std::log2(double(above->m) / below->m);
  return below->tflops + t * (above->tflops - below->tflops);
}

double cost::memorySeconds(const Calibration &cal, double bytes) {
  return bytes / (cal.hbmTbPerS * 1e12);
}

double cost::gemmSeconds(const Calibration &cal, double m, double n, double k,
                         double bytes) {
  double flops = 2.0 * m * n * k;
  return std::max(flops / (gemmTflops(cal, m, n, k) * 1e12),
                  memorySeconds(cal, bytes));
}

double cost::linkGbPerS(const Topology &topo, LinkTier tier) {
  if (tier == LinkTier::NVLink)
    return topo.intraNode.gbPerSPerDirection;
  return topo.interNode.nicsPerNode * topo.interNode.gbitPerSPerNic / 8.0 /
         double(topo.gpusPerNode);
}

double cost::linkLatencyUs(const Topology &topo, LinkTier tier) {
  return tier == LinkTier::NVLink ? topo.intraNode.latencyUs
                                  : topo.interNode.latencyUs;
}

static const LinkCalibration &linkOf(const Calibration &cal, LinkTier tier) {
  return tier == LinkTier::NVLink ? cal.nvlink : cal.fabric;
}

std::optional<double>
cost::measuredAllReduceSeconds(const LinkCalibration &link, int64_t ranks,
                               double bytes) {
  std::vector<const AllReducePoint *> row;
  for (const AllReducePoint &p : link.allReduce)
    if (p.ranks == ranks)
      row.push_back(&p); // sorted by bytes
  if (row.empty())
    return std::nullopt;
  // Below the smallest size: its time, the fixed cost. Above the largest:
  // its bandwidth. Between two sizes: a straight line, as the alpha-beta
  // model is between any two.
  if (bytes <= row.front()->bytes)
    return row.front()->us * 1e-6;
  if (bytes >= row.back()->bytes)
    return row.back()->us * 1e-6 * bytes / row.back()->bytes;
  for (size_t i = 1; i < row.size(); ++i)
    if (bytes <= row[i]->bytes) {
      const AllReducePoint &a = *row[i - 1], &b = *row[i];
      double t = (bytes - a.bytes) / (b.bytes - a.bytes);
      return (a.us + t * (b.us - a.us)) * 1e-6;
    }
  return row.back()->us * 1e-6;
}

double cost::allReduceSeconds(const Calibration &cal, const Topology &topo,
                              LinkTier tier, int64_t ranks, double bytes,
                              Algorithm algorithm) {
  if (ranks <= 1)
    return 0;
  const LinkCalibration &link = linkOf(cal, tier);
  // Measured times are NCCL's own pick of algorithm: either asks for them.
  if (std::optional<double> measured =
          measuredAllReduceSeconds(link, ranks, bytes))
    return *measured;
  double n = double(ranks);
  double hops = algorithm == Algorithm::Ring ? 2.0 * (n - 1)
                                             : 2.0 * std::ceil(std::log2(n));
  double efficiency =
      algorithm == Algorithm::Ring ? link.ringEfficiency : link.treeEfficiency;
  double busbw = efficiency * linkGbPerS(topo, tier) * 1e9;
  return (link.baseUs + hops * linkLatencyUs(topo, tier)) * 1e-6 +
         bytes * 2.0 * (n - 1) / n / busbw;
}

double cost::allReduceSeconds(const Calibration &cal, const Topology &topo,
                              LinkTier tier, int64_t ranks, double bytes) {
  return std::min(
      allReduceSeconds(cal, topo, tier, ranks, bytes, Algorithm::Ring),
      allReduceSeconds(cal, topo, tier, ranks, bytes, Algorithm::Tree));
}

double cost::allGatherSeconds(const Calibration &cal, const Topology &topo,
                              LinkTier tier, int64_t ranks, double bytes) {
  if (ranks <= 1)
    return 0;
  const LinkCalibration &link = linkOf(cal, tier);
  double n = double(ranks);
  double busbw = link.ringEfficiency * linkGbPerS(topo, tier) * 1e9;
  return (link.baseUs + (n - 1) * linkLatencyUs(topo, tier)) * 1e-6 +
         bytes * (n - 1) / n / busbw;
}

double cost::sendRecvSeconds(const Calibration &cal, const Topology &topo,
                             LinkTier tier, double bytes) {
  const LinkCalibration &link = linkOf(cal, tier);
  double bw = link.ringEfficiency * linkGbPerS(topo, tier) * 1e9;
  return (link.baseUs + linkLatencyUs(topo, tier)) * 1e-6 + bytes / bw;
}

std::string cost::formatBytes(double bytes) {
  const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (unit < 4 && std::abs(bytes) >= 1024.0) {
    bytes /= 1024.0;
    ++unit;
  }
  return unit == 0 ? llvm::formatv("{0:F0} bytes", bytes).str()
                   : llvm::formatv("{0:F1} {1}", bytes, units[unit]).str();
}

double cost::pipelineBubble(int64_t pp, int64_t microbatches) {
  return double(pp - 1) / double(microbatches + pp - 1);
}

//===----------------------------------------------------------------------===//
// The per-rank graph's costs
//===----------------------------------------------------------------------===//

static double numel(Value v) {
  return double(cast<RankedTensorType>(v.getType()).getNumElements());
}
static double elemBytes(Value v) {
  Type t = cast<RankedTensorType>(v.getType()).getElementType();
  return std::max<double>(1, t.getIntOrFloatBitWidth() / 8);
}
static double bytesOf(Value v) { return numel(v) * elemBytes(v); }
static bool isWeight(Value v) {
  Operation *def = v.getDefiningOp();
  while (auto r = dyn_cast_or_null<ReshapeOp>(def))
    def = r.getInput().getDefiningOp();
  return isa_and_nonnull<WeightOp>(def);
}

FailureOr<GraphCosts> GraphCosts::build(func::FuncOp func, int64_t tp,
                                        int64_t prompt) {
  GraphCosts g;
  g.tpDegree = tp;
  g.prompt = prompt;
  g.graph = func;
  Block &body = func.getBody().front();
  llvm::DenseMap<Operation *, int64_t> index;
  for (Operation &op : body)
    if (!isa<WeightOp, arith::ConstantOp, func::ReturnOp>(op)) {
      index[&op] = g.opList.size();
      g.opList.push_back(&op);
    }
  // An elementwise op with one elementwise user is fused into it (as the
  // plan builder does), so it neither launches nor writes its result.
  auto inlined = [](Operation *op) {
    if (!op || !isFusableElementwise(op) || !op->getResult(0).hasOneUse())
      return false;
    return isFusableElementwise(*op->getResult(0).getUsers().begin());
  };
  llvm::StringMap<int64_t> weightIndex;
  for (Operation &op : body) {
    auto w = dyn_cast<WeightOp>(op);
    if (!w)
      continue;
    // The same key as the plan builder's: one tensor per name and slice.
    std::string key = w.getName().str();
    if (auto dim = w.getShardDim())
      key +=
          llvm::formatv("#{0}:{1}:{2}", int64_t(*dim),
                        int64_t(*w.getShardBase()), int64_t(*w.getShardSize()))
              .str();
    auto [it, fresh] = weightIndex.try_emplace(key, g.weights.size());
    if (fresh)
      g.weights.push_back({bytesOf(w.getResult()), {}});
    for (Operation *user : w->getUsers())
      if (index.count(user))
        g.weights[it->second].users.push_back(index[user]);
  }
  for (Operation *op : g.opList) {
    Op c;
    c.kernel = !inlined(op) && !isa<ReshapeOp>(op);
    auto activation = [&](Value v) {
      return isWeight(v) || inlined(v.getDefiningOp()) ? 0.0 : bytesOf(v);
    };
    if (auto l = dyn_cast<LinearOp>(op)) {
      c.kind = Op::Kind::Gemm;
      c.n = double(l.getResult().getType().getShape().back());
      c.k = double(l.getInput().getType().getShape().back());
      c.rows = numel(l.getResult()) / c.n;
      c.weightBytes =
          bytesOf(l.getWeight()) + (l.getBias() ? bytesOf(l.getBias()) : 0.0);
      c.actBytes = activation(l.getInput()) + bytesOf(l.getResult());
      // A fused residual is one more read in the epilogue (the add kernel
      // it replaces read it, the product, and wrote the sum).
      if (Value r = l.getResidual())
        c.actBytes += activation(r);
    } else if (auto m = dyn_cast<MatmulOp>(op)) {
      c.kind = Op::Kind::Gemm;
      auto a = m.getA().getType();
      c.k = double(m.getTransposeA() ? a.getDimSize(a.getRank() - 2)
                                     : a.getShape().back());
      c.n = double(m.getResult().getType().getShape().back());
      c.rows = numel(m.getResult()) / c.n;
      for (Value v : {m.getA(), m.getB()})
        (isWeight(v) ? c.weightBytes : c.actBytes) += bytesOf(v);
      c.actBytes += bytesOf(m.getResult());
    } else if (auto a = dyn_cast<AttentionOp>(op)) {
      c.kind = Op::Kind::Attention;
      auto q = a.getQ().getType(), k = a.getK().getType();
      int64_t hd = a.headsDim(), sd = a.seqDim();
      c.heads = double(q.getDimSize(0) * q.getDimSize(hd));
      c.kvHeads = double(k.getDimSize(0) * k.getDimSize(hd));
      c.seq = double(q.getDimSize(sd));
      c.keys = double(k.getDimSize(sd));
      c.dim = double(q.getDimSize(3));
      c.vDim = double(a.getV().getType().getDimSize(3));
      c.causal = a.getCausal();
      c.elemBytes = elemBytes(a.getK());
      for (Value v : op->getOperands())
        c.actBytes += activation(v);
      c.actBytes += bytesOf(a.getResult());
      ++g.numLayers;
    } else if (isa<AllReduceOp>(op)) {
      c.kind = Op::Kind::AllReduce;
      c.commBytes = bytesOf(op->getResult(0));
    } else if (isa<AllGatherOp>(op)) {
      c.kind = Op::Kind::AllGather;
      c.commBytes = bytesOf(op->getResult(0));
    } else if (auto e = dyn_cast<EmbeddingOp>(op)) {
      // Only the looked-up rows of the table are read.
      c.weightBytes = 0;
      c.actBytes = 2.0 * bytesOf(e.getResult()) + activation(e.getIds());
    } else if (c.kernel) {
      for (Value v : op->getOperands())
        (isWeight(v) ? c.weightBytes : c.actBytes) +=
            isWeight(v) ? bytesOf(v) : activation(v);
      for (Value r : op->getResults())
        c.actBytes += bytesOf(r);
    }
    g.opCosts.push_back(c);
  }
  // Values read by later ops: what a pipeline cut between them sends.
  g.readers.resize(g.opList.size());
  for (auto [i, op] : llvm::enumerate(g.opList)) {
    if (inlined(op))
      continue;
    for (Value r : op->getResults()) {
      llvm::SmallSetVector<int64_t, 4> users;
      for (Operation *u : r.getUsers())
        users.insert(isa<func::ReturnOp>(u) ? int64_t(g.opList.size())
                                            : index.lookup(u));
      for (int64_t u : users)
        g.readers[i].push_back({u, bytesOf(r)});
    }
  }
  // The activation arena, from the plan builder itself (batch 1, one stage);
  // weight buffers are not in the arena, so their stored types do not matter.
  auto weightInfo = [](StringRef) -> std::optional<WeightInfo> {
    return WeightInfo{::weft::artifact::F32, {}};
  };
  RankLayout layout;
  layout.tp = tp;
  FailureOr<::weft::artifact::Plan> plan = buildPlan(func, weightInfo, layout);
  if (failed(plan))
    return failure();
  g.arenaBytes = double(plan->arena_bytes());
  return g;
}

double GraphCosts::weightBytes() const {
  double total = 0;
  for (const Weight &w : weights)
    total += w.bytes;
  return total;
}

const std::vector<int64_t> &GraphCosts::stagesFor(int64_t pp) const {
  auto it = stageCache.find(pp);
  if (it != stageCache.end())
    return it->second;
  std::vector<int64_t> stages(opList.size(), 0);
  if (pp > 1) {
    llvm::DenseMap<Operation *, int64_t> assigned = assignStages(graph, pp);
    for (auto [i, op] : llvm::enumerate(opList))
      stages[i] = assigned.lookup(op);
  }
  return stageCache.emplace(pp, std::move(stages)).first->second;
}

namespace {
/// Times of one op, seconds, split by kind.
struct OpTime {
  double seconds = 0;
  TimeSplit split;
};

/// One op's time for `tokens` tokens where the graph was bound for
/// `prompt` (prefill: tokens = b * prompt), attending over `context` keys
/// when decoding (0 for prefill).
OpTime opTime(const GraphCosts::Op &op, double scale, double decodeTokens,
              double context, int64_t tp, const Topology &topo,
              const Calibration &cal) {
  using Kind = GraphCosts::Op::Kind;
  OpTime t;
  switch (op.kind) {
  case Kind::Gemm: {
    double m = op.rows * scale;
    double bytes = op.weightBytes + op.actBytes * scale;
    double flopTime =
        2.0 * m * op.n * op.k / (gemmTflops(cal, m, op.n, op.k) * 1e12);
    double memTime = memorySeconds(cal, bytes);
    t.seconds = std::max(flopTime, memTime);
    t.split.gemm = t.seconds;
    if (memTime >= flopTime)
      t.split.weightStreaming = memorySeconds(cal, op.weightBytes);
    break;
  }
  case Kind::Attention: {
    double peak = 0;
    for (const GemmPoint &p : cal.gemm)
      peak = std::max(peak, p.tflops);
    double rate = peak * cal.attentionEfficiency * 1e12;
    double flops, bytes;
    if (context > 0) {
      // One query per sequence against the cache: K and V are read once.
      double kv = op.kvHeads * decodeTokens * context * (op.dim + op.vDim) *
                  op.elemBytes;
      flops = 2.0 * op.heads * decodeTokens * context * (op.dim + op.vDim);
      bytes = kv + op.actBytes * scale;
      t.split.kvReads = memorySeconds(cal, kv);
    } else {
      flops = 2.0 * op.heads * scale * op.seq * op.keys * (op.dim + op.vDim);
      if (op.causal && op.seq == op.keys)
        flops *= 0.5; // the upper triangle is skipped
      bytes = op.actBytes * scale;
    }
    t.seconds = std::max(flops / rate, memorySeconds(cal, bytes));
    t.split.attention = t.seconds;
    break;
  }
  case Kind::Memory:
    t.seconds = memorySeconds(cal, op.actBytes * scale + op.weightBytes) /
                cal.memoryKernelEfficiency;
    t.split.memory = t.seconds;
    break;
  case Kind::AllReduce:
    t.seconds =
        allReduceSeconds(cal, topo, LinkTier::NVLink, tp, op.commBytes * scale);
    t.split.collectives = t.seconds;
    break;
  case Kind::AllGather:
    t.seconds =
        allGatherSeconds(cal, topo, LinkTier::NVLink, tp, op.commBytes * scale);
    t.split.collectives = t.seconds;
    break;
  }
  if (op.kernel) {
    double overhead = cal.graphNodeUs * 1e-6;
    t.seconds += overhead;
    t.split.overhead = overhead;
  }
  return t;
}

void add(TimeSplit &into, const TimeSplit &t, double times = 1) {
  into.gemm += t.gemm * times;
  into.attention += t.attention * times;
  into.memory += t.memory * times;
  into.collectives += t.collectives * times;
  into.p2p += t.p2p * times;
  into.overhead += t.overhead * times;
  into.bubble += t.bubble * times;
  into.weightStreaming += t.weightStreaming * times;
  into.kvReads += t.kvReads * times;
}

} // namespace

Prediction GraphCosts::predict(const Layout &layout, const Workload &work,
                               const Topology &topo,
                               const Calibration &cal) const {
  assert(layout.tp == tpDegree && "the layout's tp is this graph's");
  Prediction p;
  p.layout = layout;
  int64_t pp = layout.pp, m = layout.microbatches;
  const std::vector<int64_t> &stage = stagesFor(pp);
  double replicaBatch = double(work.batch) / double(layout.dp);
  double micro = replicaBatch / double(m);

  // Memory of each stage's ranks.
  p.stageWeightBytes.assign(pp, 0.0);
  for (const Weight &w : weights) {
    llvm::SmallSetVector<int64_t, 4> inStages;
    for (int64_t u : w.users)
      inStages.insert(stage[u]);
    for (int64_t s : inStages)
      p.stageWeightBytes[s] += w.bytes;
  }
  std::vector<double> kvPerToken(pp, 0.0);
  for (auto [i, op] : llvm::enumerate(opCosts))
    if (op.kind == Op::Kind::Attention)
      kvPerToken[stage[i]] += op.kvHeads * (op.dim + op.vDim) * op.elemBytes;
  double tokens = double(work.prompt + work.gen);
  int64_t fullest = 0;
  for (int64_t s = 0; s < pp; ++s)
    if (p.stageWeightBytes[s] + kvPerToken[s] * replicaBatch * tokens >
        p.stageWeightBytes[fullest] +
            kvPerToken[fullest] * replicaBatch * tokens)
      fullest = s;
  p.memory.weights = p.stageWeightBytes[fullest];
  p.memory.kvCache = kvPerToken[fullest] * replicaBatch * tokens;
  p.memory.activations = arenaBytes * micro;
  p.memory.workspace = cal.workspaceMib * kMiB;
  p.memory.context = cal.contextMib * kMiB;
  p.memory.cudaGraph = cal.cudaGraphMib * kMiB;
  p.memory.nccl = layout.tp * layout.pp > 1 ? cal.ncclMib * kMiB : 0.0;
  p.capacityBytes = topo.gpu.memoryGib * kGiB;
  p.fits = p.memory.total() <= p.capacityBytes;
  // Concurrent sequences: the stage that runs out of room for KV first.
  double others = p.memory.total() - p.memory.weights - p.memory.kvCache;
  double perReplica = std::numeric_limits<double>::infinity();
  for (int64_t s = 0; s < pp; ++s) {
    double room = p.capacityBytes - others - p.stageWeightBytes[s];
    double perSeq = kvPerToken[s] * tokens;
    if (perSeq > 0)
      perReplica = std::min(perReplica, std::max(0.0, room) / perSeq);
  }
  if (std::isfinite(perReplica))
    p.maxSequences = int64_t(perReplica) * layout.dp;
  if (!p.fits)
    p.reason = "needs " + formatBytes(p.memory.total()) + " > " +
               formatBytes(p.capacityBytes) + " per GPU";

  // Bytes each stage sends on (batch 1): every value read by a later stage,
  // once per later stage.
  std::vector<double> sendBytes(pp, 0.0);
  for (auto [i, reads] : llvm::enumerate(readers)) {
    llvm::SmallSetVector<int64_t, 4> later;
    for (auto [user, bytes] : reads) {
      int64_t to = user >= int64_t(stage.size()) ? pp - 1 : stage[user];
      if (to > stage[i] && later.insert(to))
        sendBytes[stage[i]] += bytes;
    }
  }
  // A boundary crosses nodes if, in any replica, the ranks of its two
  // stages are in different nodes (rank = (replica * pp + stage) * tp).
  std::vector<LinkTier> boundaryTier(pp, LinkTier::NVLink);
  for (int64_t s = 0; s + 1 < pp; ++s)
    for (int64_t r = 0; r < std::min<int64_t>(layout.dp, topo.gpusPerNode);
         ++r) {
      int64_t a = (r * pp + s) * layout.tp, b = a + layout.tp;
      if (a / topo.gpusPerNode != b / topo.gpusPerNode)
        boundaryTier[s] = LinkTier::Fabric;
    }

  // One micro-batch through each stage; the pipeline runs m of them.
  auto phase = [&](double scale, double decodeTokens, double context,
                   TimeSplit &split) {
    std::vector<double> stageTime(pp, 0.0);
    TimeSplit one;
    for (auto [i, op] : llvm::enumerate(opCosts)) {
      OpTime t = opTime(op, scale, decodeTokens, context, layout.tp, topo, cal);
      stageTime[stage[i]] += t.seconds;
      add(one, t.split);
    }
    for (int64_t s = 0; s + 1 < pp; ++s) {
      double t =
          sendRecvSeconds(cal, topo, boundaryTier[s], sendBytes[s] * scale);
      stageTime[s] += t;
      one.p2p += t;
    }
    double sum = 0, slowest = 0;
    for (double t : stageTime) {
      sum += t;
      slowest = std::max(slowest, t);
    }
    double total = sum + double(m - 1) * slowest;
    add(split, one, double(m) / double(pp));
    split.bubble = total - double(m) * sum / double(pp);
    double comm = one.collectives + one.p2p;
    return std::make_pair(total, sum > 0 ? comm / sum : 0.0);
  };
  auto [prefill, prefillComm] = phase(micro, 0, 0, p.prefill);
  p.prefillSeconds = prefill;
  p.prefillCommShare = prefillComm;
  p.bubble = pipelineBubble(pp, m);
  if (work.gen > 0) {
    double context = double(work.prompt) + double(work.gen + 1) / 2.0;
    auto [decode, decodeComm] =
        phase(micro / double(prompt), micro, context, p.decode);
    p.decodeSecondsPerToken = decode;
    p.decodeCommShare = decodeComm;
    p.decodeTokensPerS = double(work.batch) / decode;
  }
  p.requestSeconds =
      p.prefillSeconds + double(work.gen) * p.decodeSecondsPerToken;
  // Generated tokens over the whole request (prefill included); with no
  // generation, prompt tokens through prefill.
  double produced = work.gen > 0 ? double(work.batch * work.gen)
                                 : double(work.batch * work.prompt);
  p.tokensPerSPerGpu = produced / p.requestSeconds / double(layout.gpus());
  p.clusterTokensPerS = p.tokensPerSPerGpu * double(topo.worldSize());
  return p;
}
