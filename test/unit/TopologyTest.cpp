// Unit tests of the topology format: every preset, each refusal and its line.
#include "compiler/topology/Topology.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <map>

using namespace mlir::weft;
using IntraKind = Topology::IntraNodeKind;
using InterKind = Topology::InterNodeKind;

namespace {

/// A valid single-node file; the refusal tests edit one line of it.
const char *kValid = R"(# a test topology
version: 1
name: test-box
gpu:
  type: H100-SXM-80GB
  memory_gib: 80
  hbm_tb_per_s: 3.35
  peak_tflops:
    fp32: 66.9
    tf32: 494.7
    bf16: 989.4
    fp16: 989.4
    fp8: 1978.9
  sm_arch: sm_90a
gpus_per_node: 8
intra_node:
  kind: nvswitch
  gb_per_s_per_direction: 450
  latency_us: 1
inter_node:
  kind: infiniband
  nics_per_gpu: 1
  gbit_per_s_per_nic: 400
  latency_us: 3
nodes: 2
)";

/// kValid with `from` replaced by `to` (which must occur once).
std::string edit(const std::string &from, const std::string &to) {
  std::string text = kValid;
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from;
  if (at != std::string::npos)
    text.replace(at, from.size(), to);
  return text;
}

/// The error message for `text`, or "" if it parses.
std::string errorOf(const std::string &text) {
  llvm::Expected<Topology> t = parseTopology(text, "t.yaml");
  if (t)
    return "";
  return llvm::toString(t.takeError());
}

TEST(Topology, ParsesAValidFile) {
  llvm::Expected<Topology> t = parseTopology(kValid, "t.yaml");
  ASSERT_TRUE(static_cast<bool>(t)) << llvm::toString(t.takeError());
  EXPECT_EQ(t->version, 1);
  EXPECT_EQ(t->name, "test-box");
  EXPECT_EQ(t->gpu.type, "H100-SXM-80GB");
  EXPECT_DOUBLE_EQ(t->gpu.memoryGib, 80);
  EXPECT_DOUBLE_EQ(t->gpu.hbmTbPerS, 3.35);
  EXPECT_DOUBLE_EQ(t->gpu.peakTflops.fp32, 66.9);
  EXPECT_DOUBLE_EQ(t->gpu.peakTflops.tf32, 494.7);
  EXPECT_DOUBLE_EQ(t->gpu.peakTflops.bf16, 989.4);
  EXPECT_DOUBLE_EQ(t->gpu.peakTflops.fp16, 989.4);
  EXPECT_DOUBLE_EQ(t->gpu.peakTflops.fp8, 1978.9);
  EXPECT_EQ(t->gpu.smArch, "sm_90a");
  EXPECT_EQ(t->gpusPerNode, 8);
  EXPECT_EQ(t->intraNode.kind, IntraKind::NVSwitch);
  EXPECT_DOUBLE_EQ(t->intraNode.gbPerSPerDirection, 450);
  EXPECT_DOUBLE_EQ(t->intraNode.latencyUs, 1);
  EXPECT_EQ(t->interNode.kind, InterKind::InfiniBand);
  EXPECT_EQ(t->interNode.nicsPerNode, 8); // nics_per_gpu * gpus_per_node
  EXPECT_DOUBLE_EQ(t->interNode.gbitPerSPerNic, 400);
  EXPECT_DOUBLE_EQ(t->interNode.latencyUs, 3);
  EXPECT_EQ(t->nodes, 2);
  EXPECT_EQ(t->worldSize(), 16);
}

TEST(Topology, FieldOrderAndNicsPerNode) {
  // nics_per_gpu is multiplied out even when gpus_per_node comes later.
  std::string text = edit("gpus_per_node: 8\n", "") + "gpus_per_node: 4\n";
  llvm::Expected<Topology> t = parseTopology(text, "t.yaml");
  ASSERT_TRUE(static_cast<bool>(t)) << llvm::toString(t.takeError());
  EXPECT_EQ(t->interNode.nicsPerNode, 4);
  t = parseTopology(edit("nics_per_gpu: 1", "nics_per_node: 2"), "t.yaml");
  ASSERT_TRUE(static_cast<bool>(t)) << llvm::toString(t.takeError());
  EXPECT_EQ(t->interNode.nicsPerNode, 2);
}

struct PresetExpectation {
  int64_t worldSize, gpusPerNode, nodes;
  const char *gpuType;
  double memoryGib, hbmTbPerS;
  IntraKind intra;
  double intraGBPerS;
  InterKind inter;
  int64_t nicsPerNode;
  double gbitPerNic;
};

TEST(Topology, EveryPresetParses) {
  const std::map<std::string, PresetExpectation> expected = {
      {"h100x1",
       {1, 1, 1, "H100-SXM-80GB", 80, 3.35, IntraKind::None, 0, InterKind::None,
        0, 0}},
      {"h100x4",
       {4, 4, 1, "H100-SXM-80GB", 80, 3.35, IntraKind::NVLink, 450,
        InterKind::None, 0, 0}},
      {"h200x4",
       {4, 4, 1, "H200-SXM-141GB", 141, 4.8, IntraKind::NVLink, 450,
        InterKind::None, 0, 0}},
      {"dgx-h100",
       {8, 8, 1, "H100-SXM-80GB", 80, 3.35, IntraKind::NVSwitch, 450,
        InterKind::None, 0, 0}},
      {"hgx-h200",
       {8, 8, 1, "H200-SXM-141GB", 141, 4.8, IntraKind::NVSwitch, 450,
        InterKind::None, 0, 0}},
      {"dgx-h100-pod32",
       {256, 8, 32, "H100-SXM-80GB", 80, 3.35, IntraKind::NVSwitch, 450,
        InterKind::InfiniBand, 8, 400}},
      {"colossus-1",
       {100000, 8, 12500, "H100-SXM-80GB", 80, 3.35, IntraKind::NVSwitch, 450,
        InterKind::Ethernet, 8, 400}},
  };
  std::vector<std::string> names;
  for (const TopologyPreset &preset : topologyPresets())
    names.push_back(preset.name.str());
  std::vector<std::string> expectedNames = {
      "colossus-1", "dgx-h100", "dgx-h100-pod32", "h100x1",
      "h100x4",     "h200x4",   "hgx-h200"};
  EXPECT_EQ(names, expectedNames); // sorted

  for (const TopologyPreset &preset : topologyPresets()) {
    SCOPED_TRACE(preset.name.str());
    EXPECT_EQ(preset.path,
              ("compiler/topology/presets/" + preset.name + ".yaml").str());
    llvm::Expected<Topology> t = loadTopology(preset.name);
    ASSERT_TRUE(static_cast<bool>(t)) << llvm::toString(t.takeError());
    EXPECT_EQ(t->name, preset.name); // the file's name: is the preset's
    auto it = expected.find(t->name);
    ASSERT_NE(it, expected.end());
    const PresetExpectation &e = it->second;
    EXPECT_EQ(t->worldSize(), e.worldSize);
    EXPECT_EQ(t->gpusPerNode, e.gpusPerNode);
    EXPECT_EQ(t->nodes, e.nodes);
    EXPECT_EQ(t->gpu.type, e.gpuType);
    EXPECT_DOUBLE_EQ(t->gpu.memoryGib, e.memoryGib);
    EXPECT_DOUBLE_EQ(t->gpu.hbmTbPerS, e.hbmTbPerS);
    EXPECT_EQ(t->gpu.smArch, "sm_90a");
    // H100 SXM and H200 SXM: the same dense peak compute.
    EXPECT_DOUBLE_EQ(t->gpu.peakTflops.fp32, 66.9);
    EXPECT_DOUBLE_EQ(t->gpu.peakTflops.tf32, 494.7);
    EXPECT_DOUBLE_EQ(t->gpu.peakTflops.bf16, 989.4);
    EXPECT_DOUBLE_EQ(t->gpu.peakTflops.fp16, 989.4);
    EXPECT_DOUBLE_EQ(t->gpu.peakTflops.fp8, 1978.9);
    EXPECT_EQ(t->intraNode.kind, e.intra);
    EXPECT_DOUBLE_EQ(t->intraNode.gbPerSPerDirection, e.intraGBPerS);
    EXPECT_EQ(t->interNode.kind, e.inter);
    EXPECT_EQ(t->interNode.nicsPerNode, e.nicsPerNode);
    EXPECT_DOUBLE_EQ(t->interNode.gbitPerSPerNic, e.gbitPerNic);
  }
}

TEST(Topology, Refusals) {
  struct Case {
    std::string text, message;
  };
  const Case cases[] = {
      // Syntax.
      {edit("  fp8: 1978.9", "  fp8: 1978.9: 3"),
       "t.yaml:13: invalid YAML: Unexpected token"},
      {edit("  memory_gib: 80", "\tmemory_gib: 80"),
       "t.yaml:6: invalid YAML: Found invalid tab character in indentation"},
      {"hello\n", "t.yaml:1: the top level must be a mapping, got 'hello'"},
      {"", "t.yaml:1: empty file: expected a mapping"},
      {"- 1\n- 2\n", "t.yaml:1: the top level must be a mapping, got a list"},
      {std::string(kValid) + "---\nversion: 1\n",
       "t.yaml:27: more than one YAML document"},
      // Unknown and repeated fields.
      {edit("  sm_arch: sm_90a", "  sm_arch: sm_90a\n  colour: green"),
       "t.yaml:15: gpu.colour: unknown field (expected one of type, "
       "memory_gib, hbm_tb_per_s, peak_tflops, sm_arch)"},
      {edit("nodes: 2", "nodes: 2\nnodes: 3"),
       "t.yaml:26: nodes: given more than once"},
      {edit("    fp16: 989.4", "    fp16: 989.4\n    int8: 1978.9"),
       "t.yaml:13: gpu.peak_tflops.int8: unknown field"},
      // Missing fields: named at the line of the mapping that lacks them.
      {edit("  hbm_tb_per_s: 3.35\n", ""),
       "t.yaml:4: gpu.hbm_tb_per_s: required field is missing"},
      {edit("nodes: 2\n", ""), "t.yaml:1: nodes: required field is missing"},
      {edit("  latency_us: 1\n", ""),
       "t.yaml:16: intra_node.latency_us: required field is missing (kind "
       "'nvswitch')"},
      {edit("  nics_per_gpu: 1\n", ""),
       "t.yaml:20: inter_node.nics_per_node: required field is missing"},
      {edit("  nics_per_gpu: 1", "  nics_per_gpu: 1\n  nics_per_node: 8"),
       "t.yaml:22: inter_node.nics_per_gpu: give nics_per_node or "
       "nics_per_gpu, not both"},
      // Wrong types.
      {edit("  memory_gib: 80", "  memory_gib: abc"),
       "t.yaml:6: gpu.memory_gib: must be a positive number, got 'abc'"},
      {edit("  memory_gib: 80", "  memory_gib: \"80\""),
       "t.yaml:6: gpu.memory_gib: must be a positive number, got '\"80\"'"},
      {edit("  memory_gib: 80", "  memory_gib:"),
       "t.yaml:6: gpu.memory_gib: must be a positive number, got nothing"},
      {edit("  type: H100-SXM-80GB", "  type: {a: 1}"),
       "t.yaml:5: gpu.type: must be a string, got a mapping"},
      {edit("gpu:\n", "gpu: 3\nx:\n"),
       "t.yaml:4: gpu: must be a mapping, got '3'"},
      {edit("gpus_per_node: 8", "gpus_per_node: 8.5"),
       "t.yaml:15: gpus_per_node: must be a positive integer, got '8.5'"},
      {edit("  memory_gib: 80", "  memory_gib: !!float 80"),
       "t.yaml:6: gpu.memory_gib: YAML tags are not supported"},
      // Non-positive numbers.
      {edit("  hbm_tb_per_s: 3.35", "  hbm_tb_per_s: -3.35"),
       "t.yaml:7: gpu.hbm_tb_per_s: must be a positive number, got '-3.35'"},
      {edit("  latency_us: 3", "  latency_us: 0"),
       "t.yaml:24: inter_node.latency_us: must be a positive number, got '0'"},
      {edit("nodes: 2", "nodes: -2"),
       "t.yaml:25: nodes: must be a positive integer, got '-2'"},
      {edit("  memory_gib: 80", "  memory_gib: .nan"),
       "t.yaml:6: gpu.memory_gib: must be a positive number"},
      // Kinds and other values.
      {edit("  kind: nvswitch", "  kind: nvlinx"),
       "t.yaml:17: intra_node.kind: unknown kind 'nvlinx' (expected one of "
       "nvlink, nvswitch, pcie, none)"},
      {edit("  kind: infiniband", "  kind: omnipath"),
       "t.yaml:21: inter_node.kind: unknown kind 'omnipath' (expected one of "
       "infiniband, ethernet, none)"},
      {edit("  kind: infiniband\n  nics_per_gpu: 1\n  gbit_per_s_per_nic: "
            "400\n  latency_us: 3\n",
            "  kind: none\n"),
       "t.yaml:21: inter_node.kind: 'none' needs nodes: 1, got 2"},
      {edit("  kind: infiniband", "  kind: none"),
       "t.yaml:22: inter_node.nics_per_gpu: not allowed with kind 'none'"},
      {edit("  kind: nvswitch\n  gb_per_s_per_direction: 450\n  latency_us: "
            "1\n",
            "  kind: none\n"),
       "t.yaml:17: intra_node.kind: 'none' needs gpus_per_node: 1, got 8"},
      {edit("  sm_arch: sm_90a", "  sm_arch: hopper"),
       "t.yaml:14: gpu.sm_arch: must be sm_ and a compute capability"},
      {edit("name: test-box", "name: test box"),
       "t.yaml:3: name: must be letters, digits, '-', '_' or '.', got 'test "
       "box'"},
      {edit("nodes: 2", "nodes: 1000000000"),
       "t.yaml:25: nodes: world size gpus_per_node * nodes is too large"},
      // Version.
      {edit("version: 1", "version: 2"),
       "t.yaml:2: version: unsupported version 2 (this weft reads version 1)"},
      {edit("version: 1", "version: one"),
       "t.yaml:2: version: must be a positive integer, got 'one'"},
      {edit("version: 1\n", ""),
       "t.yaml:1: version: required field is missing"},
  };
  for (const Case &c : cases) {
    std::string error = errorOf(c.text);
    EXPECT_EQ(error.rfind(c.message, 0), 0u)
        << "expected: " << c.message << "\n     got: " << error << "\nfor:\n"
        << c.text;
  }
}

TEST(Topology, LoadsPresetsAndFiles) {
  // An unknown name lists the presets.
  llvm::Expected<Topology> t = loadTopology("dgx-h1000");
  ASSERT_FALSE(static_cast<bool>(t));
  bool unknown = false;
  std::string message;
  llvm::handleAllErrors(t.takeError(), [&](const UnknownTopologyError &e) {
    unknown = true;
    message = e.message();
  });
  EXPECT_TRUE(unknown);
  EXPECT_EQ(message, "unknown topology 'dgx-h1000': not a preset and no such "
                     "file; presets: colossus-1, dgx-h100, dgx-h100-pod32, "
                     "h100x1, h100x4, h200x4, hgx-h200");

  // A path that does not exist is a file error, not an unknown preset.
  t = loadTopology("no/such/cluster.yaml");
  ASSERT_FALSE(static_cast<bool>(t));
  EXPECT_EQ(llvm::toString(t.takeError()),
            "cannot read 'no/such/cluster.yaml': No such file or directory");

  // A file: errors name it.
  llvm::SmallString<128> path;
  ASSERT_FALSE(
      llvm::sys::fs::createTemporaryFile("weft-topology", "yaml", path));
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    ASSERT_FALSE(ec);
    os << edit("  memory_gib: 80", "  memory_gib: abc");
  }
  t = loadTopology(path);
  ASSERT_FALSE(static_cast<bool>(t));
  EXPECT_EQ(llvm::toString(t.takeError()),
            (path + ":6: gpu.memory_gib: must be a positive number, got 'abc'")
                .str());
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    os << kValid;
  }
  t = loadTopology(path);
  ASSERT_TRUE(static_cast<bool>(t)) << llvm::toString(t.takeError());
  EXPECT_EQ(t->name, "test-box");
  llvm::sys::fs::remove(path);
}

} // namespace
