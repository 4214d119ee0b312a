// Unit tests of the cost model against hand-computed values: GEMM rate
// interpolation, roofline terms, alpha-beta collectives, the pipeline bubble,
// memory fit and a one-GEMM prefill; and of the calibration format.
#include "compiler/cost/CostModel.h"
#include "compiler/artifact/PlanBuilder.h"
#include "compiler/cost/Calibration.h"
#include "compiler/pipeline/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/Error.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::weft;
using namespace mlir::weft::cost;

namespace {

Calibration testCalibration() {
  Calibration c;
  c.gpu = "H100";
  c.gemm = {
      {128, 8192, 8192, 400}, {8192, 8192, 8192, 780}, {128, 1024, 8192, 100}};
  c.hbmTbPerS = 2.98;
  c.attentionEfficiency = 0.5;
  c.launchUs = 4;
  c.graphNodeUs = 1.5;
  c.nvlink = {6.0, 0.8, 0.7};
  c.fabric = {10.0, 0.8, 0.7};
  c.contextMib = 600;
  c.workspaceMib = 32;
  c.ncclMib = 400;
  c.cudaGraphMib = 64;
  return c;
}

/// Two nodes of 8 GPUs: NVSwitch at 450 GB/s and 1 us inside a node, one
/// 400 Gbit/s NIC per GPU (50 GB/s) and 5 us between nodes.
Topology testTopology() {
  Topology t;
  t.name = "test";
  t.gpu.type = "H100-SXM-80GB";
  t.gpu.memoryGib = 80;
  t.gpusPerNode = 8;
  t.intraNode = {Topology::IntraNodeKind::NVSwitch, 450, 1.0};
  t.interNode = {Topology::InterNodeKind::Ethernet, 8, 400, 5.0};
  t.nodes = 2;
  return t;
}

TEST(CostModel, GemmRateInterpolatesInLog2M) {
  Calibration c = testCalibration();
  // log2(1024) is halfway between log2(128) = 7 and log2(8192) = 13.
  EXPECT_DOUBLE_EQ(gemmTflops(c, 1024, 8192, 8192), 590.0);
  EXPECT_DOUBLE_EQ(gemmTflops(c, 16, 8192, 8192), 400.0);    // clamped
  EXPECT_DOUBLE_EQ(gemmTflops(c, 65536, 8192, 8192), 780.0); // clamped
  // The points of the nearest (N, K) are used.
  EXPECT_DOUBLE_EQ(gemmTflops(c, 128, 1000, 8192), 100.0);
}

TEST(CostModel, GemmRoofline) {
  Calibration c = testCalibration();
  // Compute bound: 2 * 8192^3 FLOP at 780 TFLOP/s.
  EXPECT_NEAR(gemmSeconds(c, 8192, 8192, 8192, 3 * 8192.0 * 8192 * 2),
              2.0 * 8192 * 8192 * 8192 / 780e12, 1e-12);
  // Memory bound (decode): one row against 128 MiB of bf16 weights.
  double weights = 8192.0 * 8192 * 2;
  EXPECT_NEAR(gemmSeconds(c, 1, 8192, 8192, weights), weights / 2.98e12, 1e-12);
  EXPECT_NEAR(memorySeconds(c, 2.98e12), 1.0, 1e-12);
}

TEST(CostModel, AllReduceAlphaBeta) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  double gib = 1024.0 * 1024 * 1024;
  // Ring on 8: (6 + 14 hops x 1 us) + 1 GiB x 2 x 7/8 / (0.8 x 450 GB/s).
  double ring = 20e-6 + gib * 1.75 / 360e9;
  // Tree on 8: (6 + 2 x 3 hops x 1 us) + the same bytes at 0.7 x 450 GB/s.
  double tree = 12e-6 + gib * 1.75 / 315e9;
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 8, gib, Algorithm::Ring),
              ring, 1e-12);
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 8, gib, Algorithm::Tree),
              tree, 1e-12);
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 8, gib), ring, 1e-12);
  // Small messages are latency bound: the tree's fewer hops win.
  double small = 16384;
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 8, small),
              12e-6 + small * 1.75 / 315e9, 1e-12);
  EXPECT_EQ(allReduceSeconds(c, t, LinkTier::NVLink, 1, gib), 0.0);
  // All-gather of a 1 MB result over 4: (6 + 3 x 1 us) + 3/4 MB / 360 GB/s.
  EXPECT_NEAR(allGatherSeconds(c, t, LinkTier::NVLink, 4, 1e6),
              9e-6 + 0.75e6 / 360e9, 1e-12);
}

TEST(CostModel, AllReduceMeasuredPoints) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  double mib = 1024.0 * 1024;
  // Measured on 4: 10 us at 4 KiB, 20 us at 1 MiB, 50 us at 4 MiB; and one
  // point on 2.
  c.nvlink.allReduce = {
      {2, 4096, 7}, {4, 4096, 10}, {4, mib, 20}, {4, 4 * mib, 50}};
  // At and below the smallest size: its time.
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 4, 4096), 10e-6, 1e-12);
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 4, 1024), 10e-6, 1e-12);
  // Halfway in bytes between 4 KiB and 1 MiB: halfway in time.
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 4, (4096 + mib) / 2),
              15e-6, 1e-12);
  // 2.5 MiB: half of the way from 1 to 4 MiB, 20 + 30 / 2 us; whichever
  // algorithm is asked for (the measurement is NCCL's choice).
  EXPECT_NEAR(
      allReduceSeconds(c, t, LinkTier::NVLink, 4, 2.5 * mib, Algorithm::Ring),
      35e-6, 1e-12);
  EXPECT_NEAR(
      allReduceSeconds(c, t, LinkTier::NVLink, 4, 2.5 * mib, Algorithm::Tree),
      35e-6, 1e-12);
  // Above the largest: its bandwidth, 50 us per 4 MiB.
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 4, 8 * mib), 100e-6,
              1e-12);
  // One point: it is the time at every smaller size.
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 2, 100), 7e-6, 1e-12);
  // 8 was not measured: the line, base + tree hops (6 + 6 x 1 us).
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::NVLink, 8, 16384),
              12e-6 + 16384 * 1.75 / 315e9, 1e-12);
  EXPECT_FALSE(measuredAllReduceSeconds(c.nvlink, 8, 16384).has_value());
  // The fabric tier has no points: base 10 us, 2 hops of 5 us.
  EXPECT_NEAR(allReduceSeconds(c, t, LinkTier::Fabric, 4, mib, Algorithm::Ring),
              (10 + 6 * 5) * 1e-6 + mib * 1.5 / 40e9, 1e-12);
  // All-gathers keep the line.
  EXPECT_NEAR(allGatherSeconds(c, t, LinkTier::NVLink, 4, 1e6),
              9e-6 + 0.75e6 / 360e9, 1e-12);
}

TEST(CostModel, SendRecvPerTier) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  // Fabric: 8 NICs x 400 Gbit/s / 8 GPUs = 50 GB/s per GPU, at 0.8.
  EXPECT_DOUBLE_EQ(linkGbPerS(t, LinkTier::Fabric), 50.0);
  double bytes = 64.0 * 1024 * 1024;
  EXPECT_NEAR(sendRecvSeconds(c, t, LinkTier::Fabric, bytes),
              15e-6 + bytes / 40e9, 1e-12);
  EXPECT_NEAR(sendRecvSeconds(c, t, LinkTier::NVLink, bytes),
              7e-6 + bytes / 360e9, 1e-12);
}

TEST(CostModel, PipelineBubble) {
  EXPECT_DOUBLE_EQ(pipelineBubble(1, 1), 0.0);
  EXPECT_DOUBLE_EQ(pipelineBubble(4, 4), 3.0 / 7.0);
  EXPECT_DOUBLE_EQ(pipelineBubble(8, 1), 7.0 / 8.0);
}

/// One attention layer's worth: a projection and an attention op, f32.
const char *kGraph = R"mlir(
func.func @main(%x: tensor<1x8x32xf32>, %q: tensor<1x4x8x16xf32>,
                %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>)
    -> (tensor<1x8x64xf32>, tensor<1x4x8x16xf32>) {
  %w = weft.weight "proj" : tensor<64x32xf32>
  %y = weft.linear %x, %w {transpose_weight = true}
      : tensor<1x8x32xf32>, tensor<64x32xf32> -> tensor<1x8x64xf32>
  %a = weft.attention %q, %k, %v {scale = 0.25 : f64, causal = true}
      : tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>
      -> tensor<1x4x8x16xf32>
  return %y, %a : tensor<1x8x64xf32>, tensor<1x4x8x16xf32>
}
)mlir";

class GraphCostsTest : public ::testing::Test {
protected:
  void SetUp() override {
    DialectRegistry registry;
    registerWeftDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
    module = parseSourceString<ModuleOp>(kGraph, &ctx);
    ASSERT_TRUE(module);
    auto func = module->lookupSymbol<func::FuncOp>("main");
    FailureOr<GraphCosts> built = GraphCosts::build(func, 1, 8);
    ASSERT_TRUE(succeeded(built));
    costs.emplace(std::move(*built));
  }
  MLIRContext ctx;
  OwningOpRef<ModuleOp> module;
  std::optional<GraphCosts> costs;
};

TEST_F(GraphCostsTest, MemoryFit) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  EXPECT_EQ(costs->layers(), 1);
  EXPECT_DOUBLE_EQ(costs->weightBytes(), 64 * 32 * 4);
  Prediction p = costs->predict({1, 1, 1, 1}, {2, 8, 8}, t, c);
  EXPECT_DOUBLE_EQ(p.memory.weights, 64 * 32 * 4);
  // 2 sequences x (8 + 8) tokens x 2 kv heads x (16 + 16) x 4 bytes.
  EXPECT_DOUBLE_EQ(p.memory.kvCache, 2 * 16 * 2 * 32 * 4);
  EXPECT_DOUBLE_EQ(p.memory.workspace, 32.0 * 1024 * 1024);
  EXPECT_EQ(p.memory.nccl, 0.0); // one GPU: no communicator
  EXPECT_TRUE(p.fits);
  // A GPU of 0.5 GiB cannot hold the 600 MiB context.
  t.gpu.memoryGib = 0.5;
  p = costs->predict({1, 1, 1, 1}, {2, 8, 8}, t, c);
  EXPECT_FALSE(p.fits);
  // 600 + 32 + 64 MiB fixed, and 20 KiB of weights, cache and arena.
  EXPECT_EQ(p.reason, "needs 696.0 MiB > 512.0 MiB per GPU");
}

TEST_F(GraphCostsTest, PrefillRoofline) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  Prediction p = costs->predict({1, 1, 1, 1}, {2, 8, 0}, t, c);
  // The GEMM: M = 2 x 8 rows, N = 64, K = 32; memory bound: its weights
  // plus 2 x (input 8x32 + output 8x64) x 4 bytes at 2.98 TB/s.
  double gemm = std::max(2.0 * 16 * 64 * 32 / 400e12,
                         (8192 + 2 * (8 * 32 + 8 * 64) * 4.0) / 2.98e12);
  // Attention: 2 x 4 heads x 8 x 8 keys x (16 + 16) FLOP, halved (causal),
  // at 0.5 x 780 TFLOP/s; or its q, k, v and output bytes, whichever is
  // slower.
  double flops = 2.0 * 2 * 4 * 8 * 8 * 32 / 2;
  double bytes = 2.0 * (4 + 2 + 2 + 4) * 8 * 16 * 4;
  double attention = std::max(flops / 390e12, bytes / 2.98e12);
  EXPECT_NEAR(p.prefillSeconds, gemm + attention + 2 * 1.5e-6, 1e-15);
  EXPECT_DOUBLE_EQ(p.prefillCommShare, 0.0);
  EXPECT_DOUBLE_EQ(p.bubble, 0.0);
}

TEST_F(GraphCostsTest, DecodeRoofline) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  Prediction p = costs->predict({1, 1, 1, 1}, {2, 8, 8}, t, c);
  // One token for each of 2 sequences: the GEMM has M = 2 rows and reads
  // its weights plus a quarter of the prompt's activations (2 of 8 tokens).
  double gemm = std::max(2.0 * 2 * 64 * 32 / 400e12,
                         (8192 + 0.25 * (8 * 32 + 8 * 64) * 4.0) / 2.98e12);
  // Attention over the mean context 8 + (8 + 1) / 2 = 12.5: the KV cache is
  // 2 kv heads x 2 sequences x 12.5 x (16 + 16) x 4 bytes; FLOPs 2 x 4
  // heads x 2 x 12.5 x 32.
  double kv = 2.0 * 2 * 12.5 * 32 * 4;
  double act = 0.25 * (4 + 2 + 2 + 4) * 8 * 16 * 4;
  double attention =
      std::max(2.0 * 4 * 2 * 12.5 * 32 / 390e12, (kv + act) / 2.98e12);
  EXPECT_NEAR(p.decodeSecondsPerToken, gemm + attention + 2 * 1.5e-6, 1e-15);
  EXPECT_NEAR(p.requestSeconds, p.prefillSeconds + 8 * p.decodeSecondsPerToken,
              1e-15);
  EXPECT_NEAR(p.decodeTokensPerS, 2 / p.decodeSecondsPerToken, 1e-6);
  // 2 x 8 tokens generated over the request, on one GPU of the 16.
  EXPECT_NEAR(p.tokensPerSPerGpu, 16 / p.requestSeconds, 1e-6);
  EXPECT_NEAR(p.clusterTokensPerS, 16 * p.tokensPerSPerGpu, 1e-6);
}

TEST_F(GraphCostsTest, PipelineOfTwoStages) {
  Calibration c = testCalibration();
  Topology t = testTopology();
  // The cut falls between the GEMM (32768 FLOP-units of the stage cost) and
  // attention (16384): stage 0 runs the GEMM and sends its 8 x 64 f32
  // result to the last stage (it is a model output), stage 1 attention.
  // 2 micro-batches of 1 sequence each.
  Prediction p = costs->predict({1, 2, 1, 2}, {2, 8, 0}, t, c);
  double gemm = std::max(2.0 * 8 * 64 * 32 / 400e12,
                         (8192 + (8 * 32 + 8 * 64) * 4.0) / 2.98e12) +
                1.5e-6;
  double send = 7e-6 + 8 * 64 * 4 / 360e9;
  double attention = std::max(2.0 * 4 * 8 * 8 * 32 / 2 / 390e12,
                              (4 + 2 + 2 + 4) * 8 * 16 * 4 / 2.98e12) +
                     1.5e-6;
  double t0 = gemm + send, t1 = attention;
  EXPECT_NEAR(p.prefillSeconds, t0 + t1 + std::max(t0, t1), 1e-15);
  EXPECT_DOUBLE_EQ(p.bubble, 1.0 / 3.0);
  ASSERT_EQ(p.stageWeightBytes.size(), 2u);
  EXPECT_DOUBLE_EQ(p.stageWeightBytes[0], 8192);
  EXPECT_DOUBLE_EQ(p.stageWeightBytes[1], 0);
}

/// A block's last projection and its residual connection, as an add after
/// the projection and as fused into it (f32, [1, 8] rows).
const char *kResidualGraphs[] = {R"mlir(
func.func @main(%x: tensor<1x8x32xf32>, %r: tensor<1x8x64xf32>)
    -> tensor<1x8x64xf32> {
  %w = weft.weight "proj" : tensor<64x32xf32>
  %y = weft.linear %x, %w {transpose_weight = true}
      : tensor<1x8x32xf32>, tensor<64x32xf32> -> tensor<1x8x64xf32>
  %s = weft.add %y, %r
      : tensor<1x8x64xf32>, tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  return %s : tensor<1x8x64xf32>
}
)mlir",
                                 R"mlir(
func.func @main(%x: tensor<1x8x32xf32>, %r: tensor<1x8x64xf32>)
    -> tensor<1x8x64xf32> {
  %w = weft.weight "proj" : tensor<64x32xf32>
  %s = weft.linear %x, %w residual %r {transpose_weight = true}
      : tensor<1x8x32xf32>, tensor<64x32xf32> residual tensor<1x8x64xf32>
      -> tensor<1x8x64xf32>
  return %s : tensor<1x8x64xf32>
}
)mlir"};

// The cost model's activation arena is the one `weft compile` plans for the
// same graph on one stage: every op is lowered, none is skipped for want of
// a stage map (ops without one were taken for weights, and the plan read
// buffers that were never made).
TEST(CostModel, ArenaIsTheCompiledPlans) {
  DialectRegistry registry;
  registerWeftDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  auto module = parseSourceString<ModuleOp>(kResidualGraphs[0], &ctx);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<func::FuncOp>("main");
  FailureOr<GraphCosts> g = GraphCosts::build(func, 1, 8);
  ASSERT_TRUE(succeeded(g));
  llvm::DenseMap<Operation *, int64_t> stages;
  func.walk([&](Operation *op) { stages[op] = 0; });
  auto weightInfo = [](StringRef) -> std::optional<WeightInfo> {
    return WeightInfo{::weft::artifact::F32, {}};
  };
  FailureOr<::weft::artifact::Plan> plan =
      buildPlan(func, weightInfo, RankLayout{}, &stages);
  ASSERT_TRUE(succeeded(plan));
  // The GEMM's output and the sum: two 1x8x64 f32 buffers at most.
  EXPECT_GT(plan->arena_bytes(), 0u);
  // Batch 1, one micro-batch: the activations are the arena.
  Prediction p =
      g->predict({1, 1, 1, 1}, {1, 8, 0}, testTopology(), testCalibration());
  EXPECT_EQ(p.memory.activations, double(plan->arena_bytes()));
}

TEST(CostModel, FusedResidualPrefill) {
  DialectRegistry registry;
  registerWeftDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  Calibration c = testCalibration();
  c.memoryKernelEfficiency = 0.5;
  Topology t = testTopology();
  double seconds[2];
  for (int fused = 0; fused < 2; ++fused) {
    auto module = parseSourceString<ModuleOp>(kResidualGraphs[fused], &ctx);
    ASSERT_TRUE(module);
    FailureOr<GraphCosts> g =
        GraphCosts::build(module->lookupSymbol<func::FuncOp>("main"), 1, 8);
    ASSERT_TRUE(succeeded(g));
    seconds[fused] = g->predict({1, 1, 1, 1}, {2, 8, 0}, t, c).prefillSeconds;
  }
  // 2 sequences x 8 rows; the GEMM is memory bound at 2.98 TB/s: weights
  // 64 x 32, and per sequence the input 8 x 32 and the output 8 x 64, all
  // f32; plus one graph node of 1.5 us.
  double flops = 2.0 * 16 * 64 * 32 / 400e12;
  double weights = 64 * 32 * 4.0, in = 8 * 32 * 4.0, out = 8 * 64 * 4.0;
  double gemm = std::max(flops, (weights + 2 * (in + out)) / 2.98e12);
  // Unfused, the add reads the product and the residual and writes the sum,
  // at half the copy bandwidth, in a node of its own.
  double add = 2 * 3 * out / 2.98e12 / 0.5;
  EXPECT_NEAR(seconds[0], gemm + add + 2 * 1.5e-6, 1e-15);
  // Fused: the GEMM reads the residual too; one node.
  double fusedGemm =
      std::max(flops, (weights + 2 * (in + out + out)) / 2.98e12);
  EXPECT_NEAR(seconds[1], fusedGemm + 1.5e-6, 1e-15);
  EXPECT_LT(seconds[1], seconds[0]);
}

const char *kCalibration = R"(version: 1
gpu: H100
measured:
  date: 2026-11-26
  source: test
matmul:
  points:
    - {m: 8192, n: 8192, k: 8192, tflops: 780}
hbm:
  copy_tb_per_s: 2.98
attention:
  efficiency: 0.5
kernel:
  launch_us: 4.0
  graph_node_us: 1.5
collectives:
  nvlink:
    base_us: 6.0
    ring:
      busbw_efficiency: 0.80
    tree:
      busbw_efficiency: 0.70
  fabric:
    base_us: 10.0
    ring:
      busbw_efficiency: 0.80
    tree:
      busbw_efficiency: 0.70
memory:
  context_mib: 600
  workspace_mib: 32
  nccl_mib: 400
  cuda_graph_mib: 64
)";

std::string parseError(const std::string &text) {
  llvm::Expected<Calibration> c = parseCalibration(text, "cal.yaml");
  if (c)
    return "";
  return llvm::toString(c.takeError());
}

std::string replaced(const std::string &from, const std::string &to) {
  std::string text = kCalibration;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(Calibration, Parses) {
  llvm::Expected<Calibration> c = parseCalibration(kCalibration, "cal.yaml");
  ASSERT_TRUE(bool(c)) << llvm::toString(c.takeError());
  EXPECT_EQ(c->gpu, "H100");
  EXPECT_EQ(c->measuredDate, "2026-11-26");
  ASSERT_EQ(c->gemm.size(), 1u);
  EXPECT_EQ(c->gemm[0].m, 8192);
  EXPECT_DOUBLE_EQ(c->gemm[0].tflops, 780);
  EXPECT_DOUBLE_EQ(c->nvlink.ringEfficiency, 0.8);
  EXPECT_DOUBLE_EQ(c->fabric.baseUs, 10.0);
  EXPECT_DOUBLE_EQ(c->cudaGraphMib, 64);
  // Optional: the memory-bound kernels' efficiency defaults to 1.
  EXPECT_DOUBLE_EQ(c->memoryKernelEfficiency, 1.0);
}

TEST(Calibration, GemmSustainedEfficiency) {
  llvm::Expected<Calibration> c = parseCalibration(
      replaced("    - {m: 8192, n: 8192, k: 8192, tflops: 780}\n",
               "    - {m: 8192, n: 8192, k: 8192, tflops: 780}\n"
               "  sustained_efficiency: 0.9\n"),
      "cal.yaml");
  ASSERT_TRUE(bool(c)) << llvm::toString(c.takeError());
  // 780 TFLOP/s on the grid, 90% of it in a model's run: 702.
  EXPECT_DOUBLE_EQ(gridTflops(*c, 8192, 8192, 8192), 780);
  EXPECT_DOUBLE_EQ(gemmTflops(*c, 8192, 8192, 8192), 702);
  // 2 * 8192^3 FLOPs at 702 TFLOP/s.
  EXPECT_NEAR(gemmSeconds(*c, 8192, 8192, 8192, 0),
              2.0 * 8192 * 8192 * 8192 / 702e12, 1e-12);
  EXPECT_EQ(
      parseError(replaced("    - {m: 8192, n: 8192, k: 8192, tflops: 780}\n",
                          "    - {m: 8192, n: 8192, k: 8192, tflops: 780}\n"
                          "  sustained_efficiency: 1.5\n")),
      "cal.yaml:9: matmul.sustained_efficiency: must be a fraction in "
      "(0, 1], got '1.5'");
}

TEST(Calibration, MemoryKernelEfficiency) {
  llvm::Expected<Calibration> c = parseCalibration(
      replaced("copy_tb_per_s: 2.98",
               "copy_tb_per_s: 2.98\n  kernel_efficiency: 0.25"),
      "cal.yaml");
  ASSERT_TRUE(bool(c)) << llvm::toString(c.takeError());
  EXPECT_DOUBLE_EQ(c->memoryKernelEfficiency, 0.25);
  EXPECT_EQ(parseError(replaced("copy_tb_per_s: 2.98",
                                "copy_tb_per_s: 2.98\n  kernel_efficiency: 2")),
            "cal.yaml:11: hbm.kernel_efficiency: must be a fraction in (0, 1], "
            "got '2'");
}

TEST(Calibration, Refusals) {
  EXPECT_EQ(parseError(replaced("copy_tb_per_s: 2.98", "copy_tb_per_s: x")),
            "cal.yaml:10: hbm.copy_tb_per_s: must be a positive number, got "
            "'x'");
  EXPECT_EQ(parseError(replaced("efficiency: 0.5", "efficiency: 1.5")),
            "cal.yaml:12: attention.efficiency: must be a fraction in (0, "
            "1], got '1.5'");
  EXPECT_EQ(parseError(replaced("  launch_us: 4.0\n", "")),
            "cal.yaml:13: kernel.launch_us: required field is missing");
  EXPECT_EQ(parseError(replaced("  nccl_mib: 400\n",
                                "  nccl_mib: 400\n  extra_mib: 3\n")),
            "cal.yaml:33: memory.extra_mib: unknown field");
  EXPECT_EQ(parseError(replaced("version: 1", "version: 2")),
            "cal.yaml:1: version: unsupported version 2 (expected 1)");
  EXPECT_EQ(parseError(replaced("  date: 2026-11-26\n", "")),
            "cal.yaml:3: measured.date: required field is missing");
  EXPECT_EQ(parseError(replaced("    - {m: 8192, n: 8192, k: 8192, tflops: "
                                "780}\n",
                                "")),
            "cal.yaml:7: matmul.points: needs at least one point");
}

TEST(Calibration, AllReducePoints) {
  auto withList = [](const std::string &items) {
    return replaced("    base_us: 6.0\n",
                    "    base_us: 6.0\n    all_reduce:\n" + items);
  };
  llvm::Expected<Calibration> c =
      parseCalibration(withList("      - {ranks: 4, bytes: 4096, us: 12.5}\n"
                                "      - {ranks: 2, bytes: 65536, us: 10}\n"
                                "      - {ranks: 2, bytes: 4096, us: 9}\n"),
                       "cal.yaml");
  ASSERT_TRUE(bool(c)) << llvm::toString(c.takeError());
  // Sorted by GPU count, then bytes.
  ASSERT_EQ(c->nvlink.allReduce.size(), 3u);
  EXPECT_EQ(c->nvlink.allReduce[0].ranks, 2);
  EXPECT_EQ(c->nvlink.allReduce[0].bytes, 4096);
  EXPECT_EQ(c->nvlink.allReduce[0].us, 9);
  EXPECT_EQ(c->nvlink.allReduce[1].bytes, 65536);
  EXPECT_EQ(c->nvlink.allReduce[2].ranks, 4);
  EXPECT_EQ(c->nvlink.allReduce[2].us, 12.5);
  EXPECT_TRUE(c->fabric.allReduce.empty());
  EXPECT_EQ(parseError(withList("      - {ranks: 1, bytes: 4096, us: 9}\n")),
            "cal.yaml:20: collectives.nvlink.all_reduce[0].ranks: must be at "
            "least 2, got 1");
  EXPECT_EQ(parseError(withList("      - {ranks: 2, bytes: 4096, us: 9}\n"
                                "      - {ranks: 2, bytes: 4096, us: 8}\n")),
            "cal.yaml:21: collectives.nvlink.all_reduce[1].bytes: 4096 bytes "
            "over 2 GPUs given more than once");
  EXPECT_EQ(parseError(withList("      - {ranks: 2, bytes: 4096, us: -3}\n")),
            "cal.yaml:20: collectives.nvlink.all_reduce[0].us: must be a "
            "positive number, got '-3'");
  EXPECT_EQ(parseError(withList("      - {ranks: 2, bytes: 4.5, us: 3}\n")),
            "cal.yaml:20: collectives.nvlink.all_reduce[0].bytes: must be a "
            "positive integer, got '4.5'");
  EXPECT_EQ(parseError(withList("      - {ranks: 2, bytes: 4096}\n")),
            "cal.yaml:20: collectives.nvlink.all_reduce[0].us: required "
            "field is missing");
  EXPECT_EQ(parseError(withList("      - {us: 9}\n")),
            "cal.yaml:20: collectives.nvlink.all_reduce[0].ranks: required "
            "field is missing");
  EXPECT_EQ(
      parseError(withList("      - {ranks: 2, bytes: 4096, us: 9, algo: x}\n")),
      "cal.yaml:20: collectives.nvlink.all_reduce[0].algo: unknown field");
}

TEST(Calibration, EmbeddedFilesParseAndMatchGpus) {
  ASSERT_GE(calibrationPresets().size(), 2u);
  for (const CalibrationPreset &p : calibrationPresets()) {
    llvm::Expected<Calibration> c = parseCalibration(p.text, p.path);
    EXPECT_TRUE(bool(c)) << p.path.str() << ": "
                         << llvm::toString(c.takeError());
  }
  llvm::Expected<Calibration> h100 = calibrationForGpu("H100-SXM-80GB");
  ASSERT_TRUE(bool(h100)) << llvm::toString(h100.takeError());
  EXPECT_EQ(h100->gpu, "H100");
  llvm::Expected<Calibration> h200 = calibrationForGpu("H200-SXM-141GB");
  ASSERT_TRUE(bool(h200)) << llvm::toString(h200.takeError());
  EXPECT_EQ(h200->gpu, "H200");
  llvm::Expected<Calibration> none = calibrationForGpu("MI300X");
  ASSERT_FALSE(bool(none));
  EXPECT_NE(llvm::toString(none.takeError())
                .find("no calibration for GPU "
                      "type 'MI300X'"),
            std::string::npos);
}

} // namespace
