// Unit tests of weft-calibrate's all-reduce fit (tools/weft-calibrate/
// CollectiveFit.h) on synthetic timings made from known constants, of its
// constants against the cost model that reads them, and of the file text it
// writes against the calibration parser.
#include "tools/weft-calibrate/CollectiveFit.h"

#include "compiler/cost/Calibration.h"
#include "compiler/cost/CostModel.h"

#include "llvm/Support/Error.h"

#include <gtest/gtest.h>

using namespace weft::calibrate;

namespace {

/// Timings of an exact alpha-beta all-reduce over `ranks`, 4 KiB to 256 MiB
/// by 4x, with every time scaled by `noise(i)`.
std::vector<AllReduceSample> line(int ranks, double fixedUs, double busGbPerS,
                                  double (*noise)(int) = nullptr) {
  std::vector<AllReduceSample> out;
  int i = 0;
  for (double bytes = 4096; bytes <= 256.0 * 1024 * 1024; bytes *= 4, ++i) {
    double t =
        fixedUs * 1e-6 + bytes * 2.0 * (ranks - 1) / ranks / (busGbPerS * 1e9);
    out.push_back({bytes, t * (noise ? noise(i) : 1.0)});
  }
  return out;
}

TEST(CollectiveFit, BusBandwidthIsNccls) {
  // nccl-tests: busbw = algbw x 2(n-1)/n. 1 GB in 5 ms over 4 GPUs is an
  // algorithm bandwidth of 200 GB/s and a bus bandwidth of 300.
  EXPECT_DOUBLE_EQ(allReduceBusGbPerS(4, 1e9, 5e-3), 300.0);
  EXPECT_DOUBLE_EQ(allReduceBusGbPerS(2, 1e9, 5e-3), 200.0);
  EXPECT_DOUBLE_EQ(allReduceBusBytes(8, 800), 1400.0);
}

TEST(CollectiveFit, RecoversAnExactLine) {
  for (int ranks : {2, 4, 8}) {
    std::optional<AlphaBeta> f = fitAllReduce(ranks, line(ranks, 8.5, 340));
    ASSERT_TRUE(f.has_value()) << ranks;
    EXPECT_NEAR(f->fixedUs, 8.5, 1e-6) << ranks;
    EXPECT_NEAR(f->busGbPerS, 340, 1e-6) << ranks;
    EXPECT_LT(worstRelativeError(ranks, line(ranks, 8.5, 340), *f), 1e-9);
  }
}

TEST(CollectiveFit, NoiseMovesTheFitLittle) {
  // +-3% alternating noise: the fit stays within a few percent.
  auto noise = [](int i) { return i % 2 ? 1.03 : 0.97; };
  std::optional<AlphaBeta> f = fitAllReduce(4, line(4, 10, 300, noise));
  ASSERT_TRUE(f.has_value());
  EXPECT_NEAR(f->fixedUs, 10, 0.5);
  EXPECT_NEAR(f->busGbPerS, 300, 15);
  EXPECT_NEAR(worstRelativeError(4, line(4, 10, 300, noise), *f), 0.03, 0.02);
}

TEST(CollectiveFit, RefusesWhatIsNoLine) {
  EXPECT_FALSE(fitAllReduce(4, {}).has_value());
  EXPECT_FALSE(fitAllReduce(4, {{4096, 1e-5}}).has_value());
  // One size twice: no slope.
  EXPECT_FALSE(fitAllReduce(4, {{4096, 1e-5}, {4096, 1.1e-5}}).has_value());
  // Times that fall with size: a negative bandwidth.
  EXPECT_FALSE(fitAllReduce(4, {{4096, 1e-3}, {1 << 20, 1e-5}}).has_value());
  EXPECT_FALSE(fitAllReduce(4, {{4096, 0}, {1 << 20, 1e-5}}).has_value());
  EXPECT_FALSE(fitAllReduce(1, line(2, 8, 300)).has_value());
}

TEST(CollectiveFit, ConstantsForTheCostModel) {
  // Graph-replayed curves on 2 and 4 GPUs; a graph node costs 0.5 us and
  // the topology's hop 1 us.
  std::vector<GraphCurve> curves = {
      {2, {{4096, 9.5e-6}, {1 << 20, 12.5e-6}}, {9.5, 350}},
      {4, {{4096, 12e-6}}, {12.0, 330}}};
  NvlinkConstants c = nvlinkConstants(curves, 0.5, 1.0);
  // Every sample less the graph node.
  std::vector<AllReduceUs> points = {
      {2, 4096, 9.0}, {2, 1 << 20, 12.0}, {4, 4096, 11.5}};
  EXPECT_EQ(c.allReduce, points);
  // Base: the 2-GPU 4 KiB time, 9.5 us, less the node and 2 tree hops of
  // 1 us (not the fit's fixed cost, which would be 9.5 too: the samples
  // are in any order).
  EXPECT_DOUBLE_EQ(c.baseUs, 7.0);
  EXPECT_DOUBLE_EQ(
      nvlinkConstants({{2, {{1 << 20, 20e-6}, {4096, 9.5e-6}}, {5, 350}}}, 0.5,
                      1.0)
          .baseUs,
      7.0);
  EXPECT_EQ(treeHops(2), 2);
  EXPECT_EQ(treeHops(4), 4);
  EXPECT_EQ(treeHops(8), 6);
  // Never below 0.1 us (the file's numbers are positive).
  EXPECT_DOUBLE_EQ(
      nvlinkConstants({{8, {{4096, 0.2e-6}}, {3.0, 300}}}, 0.5, 1.0).baseUs,
      0.1);
  EXPECT_DOUBLE_EQ(
      nvlinkConstants({{8, {{4096, 0.2e-6}}, {3.0, 300}}}, 0.5, 1.0)
          .allReduce[0]
          .us,
      0.1);
  EXPECT_TRUE(nvlinkConstants({}, 0.5, 1.0).allReduce.empty());
  // Efficiency: the mean fitted busbw over the link's 450 GB/s, capped at 1.
  EXPECT_DOUBLE_EQ(busbwEfficiency({{9.5, 350}, {12.0, 370}}, 450), 0.8);
  EXPECT_DOUBLE_EQ(busbwEfficiency({{9.5, 500}}, 450), 1.0);
  EXPECT_DOUBLE_EQ(busbwEfficiency({{9.5, 0.5}}, 450), 0.01);
  EXPECT_DOUBLE_EQ(busbwEfficiency({}, 450), 0.0);
}

TEST(CollectiveFit, TheCostModelReproducesTheMeasurement) {
  // What weft-calibrate writes, read back by the cost model, gives the
  // measured times at the measured sizes once the model adds its graph node;
  // a GPU count not measured gets the fitted line and the topology's hops.
  using namespace mlir::weft::cost;
  // A measured curve that is no line: slower in the middle.
  std::vector<AllReduceSample> measured = line(4, 12.0, 360);
  for (size_t i = 3; i + 3 < measured.size(); ++i)
    measured[i].seconds *= 1.3;
  std::optional<AlphaBeta> f = fitAllReduce(4, measured);
  ASSERT_TRUE(f.has_value());
  NvlinkConstants nv = nvlinkConstants({{4, measured, *f}}, 0.5, 1.0);
  Calibration cal;
  cal.nvlink.baseUs = nv.baseUs;
  cal.nvlink.ringEfficiency = busbwEfficiency({*f}, 450);
  cal.nvlink.treeEfficiency = 0.5;
  for (const AllReduceUs &p : nv.allReduce)
    cal.nvlink.allReduce.push_back({p.ranks, p.bytes, p.us});
  mlir::weft::Topology topo;
  topo.intraNode = {mlir::weft::Topology::IntraNodeKind::NVSwitch, 450, 1.0};
  for (const AllReduceSample &p : measured)
    EXPECT_NEAR(allReduceSeconds(cal, topo, LinkTier::NVLink, 4, p.bytes) +
                    0.5e-6,
                p.seconds, 1e-9 * p.seconds)
        << p.bytes;
  // 2 GPUs, not measured: the smallest measured time less the node and 4
  // tree hops of 1 us, plus 2 hops, plus the bytes at the fitted bandwidth.
  EXPECT_NEAR(allReduceSeconds(cal, topo, LinkTier::NVLink, 2, 1e6),
              (measured[0].seconds * 1e6 - 0.5 - 4 + 2) * 1e-6 +
                  1e6 / (f->busGbPerS * 1e9),
              1e-12);
}

/// A calibration file as weft-calibrate writes one, estimates in the
/// NVLink section.
const char *kFile =
    R"(# Cost-model constants for H100, written by weft-calibrate.
version: 1
gpu: H100
measured:
  date: 2026-11-26
  source: >-
    test
matmul:
  points:
    - {m: 8192, n: 8192, k: 8192, tflops: 780} # measured
hbm:
  copy_tb_per_s: 2.98 # measured
attention:
  efficiency: 0.5 # estimate
kernel:
  launch_us: 4.0 # measured
  graph_node_us: 0.5 # measured
collectives:
  nvlink:
    base_us: 6.0 # estimate
    ring:
      busbw_efficiency: 0.80 # estimate

    tree:
      busbw_efficiency: 0.70 # estimate
  # the fabric tier: no all-reduces measured on one host
  fabric:
    base_us: 10.0 # estimate
    ring:
      busbw_efficiency: 0.80 # estimate
    tree:
      busbw_efficiency: 0.70 # estimate
memory:
  context_mib: 600 # estimate
  workspace_mib: 32
  nccl_mib: 400 # estimate
  cuda_graph_mib: 64 # estimate
)";

std::vector<std::string> linesOf(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

TEST(CollectiveFit, FindsTheNvlinkSectionAndGraphNode) {
  std::vector<std::string> lines = linesOf(kFile);
  std::optional<std::pair<size_t, size_t>> at = findNvlinkSection(lines);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(lines[at->first], "  nvlink:");
  // A blank line inside does not end it; it ends after its last key, before
  // the comment that precedes the next tier.
  EXPECT_EQ(lines[at->first + 4], "");
  EXPECT_EQ(lines[at->second],
            "  # the fabric tier: no all-reduces measured on one host");
  EXPECT_EQ(graphNodeUsOf(lines), 0.5);
  EXPECT_FALSE(findNvlinkSection(linesOf("collectives:\n  fabric:\n")));
  EXPECT_FALSE(
      findNvlinkSection(linesOf("collectives:\nmemory:\n  nvlink:\n")));
  EXPECT_FALSE(findNvlinkSection(linesOf("kernel:\n  nvlink:\n")));
  EXPECT_FALSE(graphNodeUsOf(linesOf("kernel:\n  graph_node_us: x\n")));
}

TEST(CollectiveFit, WrittenSectionParses) {
  // Measured on 2 and 4 GPUs: the section replaces the estimates and the
  // parser reads back what was measured.
  NvlinkResult r;
  r.measured = true;
  r.fewestRanks = 2;
  r.nv = nvlinkConstants({{2, line(2, 9.5, 350), {9.5, 350}},
                          {4, line(4, 12.0, 330), {12.0, 330}}},
                         0.5, 1.0);
  r.ringEfficiency = busbwEfficiency({{9.5, 350}, {12.0, 330}}, 450);
  r.ringHow = "measured: 340 GB/s";
  r.treeEfficiency = 0.6;
  r.treeHow = "measured: 270 GB/s";
  std::string text =
      withNvlinkSection(linesOf(kFile), nvlinkSection(r, 0.5, 1.0));
  llvm::Expected<mlir::weft::cost::Calibration> c =
      mlir::weft::cost::parseCalibration(text, "written.yaml");
  ASSERT_TRUE(bool(c)) << llvm::toString(c.takeError()) << "\n" << text;
  // The 4 KiB time on 2 less the node and 2 hops of 1 us.
  EXPECT_NEAR(c->nvlink.baseUs, 9.5 + 4096 / 350e3 - 0.5 - 2, 0.005);
  EXPECT_NEAR(c->nvlink.ringEfficiency, 340.0 / 450, 0.005);
  EXPECT_NEAR(c->nvlink.treeEfficiency, 0.6, 1e-12);
  ASSERT_EQ(c->nvlink.allReduce.size(), 18u); // 9 sizes on 2 and on 4
  EXPECT_EQ(c->nvlink.allReduce[0].ranks, 2);
  EXPECT_EQ(c->nvlink.allReduce[0].bytes, 4096);
  EXPECT_NEAR(c->nvlink.allReduce[0].us, 9.5 + 4096 / 350e3 - 0.5, 0.005);
  EXPECT_EQ(c->nvlink.allReduce[17].ranks, 4);
  EXPECT_EQ(c->nvlink.allReduce[17].bytes, 256.0 * 1024 * 1024);
  // The rest of the file is as it was: the fabric tier, its comment.
  EXPECT_DOUBLE_EQ(c->fabric.baseUs, 10.0);
  EXPECT_TRUE(c->fabric.allReduce.empty());
  EXPECT_NE(text.find("  # the fabric tier: no all-reduces measured"),
            std::string::npos);
  EXPECT_EQ(text.find("base_us: 6.0"), std::string::npos);

  // Not measured (one GPU): the estimates, which parse as well.
  std::string estimates = withNvlinkSection(
      linesOf(kFile), nvlinkSection(NvlinkResult(), 0.5, 1.0));
  llvm::Expected<mlir::weft::cost::Calibration> e =
      mlir::weft::cost::parseCalibration(estimates, "estimates.yaml");
  ASSERT_TRUE(bool(e)) << llvm::toString(e.takeError());
  EXPECT_DOUBLE_EQ(e->nvlink.baseUs, 6.0);
  EXPECT_DOUBLE_EQ(e->nvlink.ringEfficiency, 0.8);
  EXPECT_TRUE(e->nvlink.allReduce.empty());
}

TEST(CollectiveFit, RuntimeSamplesTakeThePeerKernelUpToItsLimit) {
  // NCCL at 4 sizes, the peer kernel at the 3 smallest; the runtime takes
  // the peer kernel up to 1 MiB, so 4 MiB stays NCCL's even though the
  // peer kernel was not timed there, and 2 MiB (over the limit) too.
  std::vector<AllReduceSample> nccl = {
      {65536, 10e-6}, {1 << 20, 15e-6}, {2 << 20, 20e-6}, {4 << 20, 30e-6}};
  std::vector<AllReduceSample> peer = {
      {65536, 3e-6}, {1 << 20, 6e-6}, {2 << 20, 9e-6}};
  std::vector<AllReduceSample> got = runtimeSamples(nccl, peer, 1 << 20);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].seconds, 3e-6);
  EXPECT_EQ(got[1].seconds, 6e-6);
  EXPECT_EQ(got[2].seconds, 20e-6);
  EXPECT_EQ(got[3].seconds, 30e-6);
  // Without peer samples (no peer access): NCCL's throughout.
  got = runtimeSamples(nccl, {}, 1 << 20);
  EXPECT_EQ(got[0].seconds, 10e-6);

  // The file says which points are the peer kernel's.
  NvlinkResult r;
  r.measured = true;
  r.fewestRanks = 2;
  r.peerLimits[2] = 8388608;
  r.nv = nvlinkConstants({{2, got, {9.5, 350}}}, 0.5, 1.0);
  std::string text = nvlinkSection(r, 0.5, 1.0);
  EXPECT_NE(text.find("one-shot through peer memory up to 8388608 bytes on 2 "
                      "GPUs, NCCL above"),
            std::string::npos)
      << text;
}

} // namespace
