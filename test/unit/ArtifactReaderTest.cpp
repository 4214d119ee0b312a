// Unit tests of the artifact reader and executor on tiny temp artifacts.
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/Sha256.h"
#include "runtime/backends/cpu/CpuExecutor.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

using namespace weft::runtime;
using namespace weft::runtime::test;
using weft::artifact::Buffer;
using weft::artifact::Instr;
using weft::artifact::Manifest;
using weft::artifact::Plan;
using weft::artifact::Step;
using weft::artifact::WeightRef;

namespace {

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

Buffer *addBuffer(Plan &plan, uint32_t id, Buffer::Kind kind, DType dtype,
                  Shape shape, uint64_t offset = 0) {
  Buffer *b = plan.add_buffers();
  b->set_id(id);
  b->set_kind(kind);
  b->set_dtype(dtype);
  for (int64_t d : shape)
    b->add_shape(d);
  b->set_offset(offset);
  b->set_bytes(numElements(shape) * dtypeSize(dtype));
  return b;
}

/// y = x + w over f32 [2]: x an input, w a weight in weights.bin (at offset
/// 8, between junk bytes), y an output. Tests edit it, then write() it.
struct TinyArtifact {
  TinyArtifact() {
    manifest.set_format_version(kArtifactFormatVersion);
    manifest.set_world_size(1);
    manifest.set_source_model(dir.file("model/model.onnx"));
    manifest.set_source_sha256(std::string(64, '0'));
    for (const char *name : {"x", "y"}) {
      auto *spec =
          name[0] == 'x' ? manifest.add_inputs() : manifest.add_outputs();
      spec->set_name(name);
      spec->set_dtype(DType::F32);
      spec->add_shape(2);
    }
    manifest.add_ranks()->set_plan_file("rank0.plan.pb");
    plan.set_format_version(kArtifactFormatVersion);
    plan.set_arena_bytes(128);
    addBuffer(plan, 0, Buffer::INPUT, DType::F32, {2}, 0)->set_name("x");
    addBuffer(plan, 1, Buffer::WEIGHT, DType::F32, {2})->set_weight(0);
    addBuffer(plan, 2, Buffer::OUTPUT, DType::F32, {2}, 64)->set_name("y");
    plan.add_inputs(0);
    plan.add_outputs(2);
    Step *add = plan.add_steps();
    add->set_kind(Step::ELEMENTWISE);
    add->set_name("add");
    add->add_inputs(0);
    add->add_inputs(1);
    add->add_outputs(2);
    *add->add_program() = instr(Instr::INPUT, DType::F32, {}, 0);
    *add->add_program() = instr(Instr::INPUT, DType::F32, {}, 1);
    *add->add_program() = instr(Instr::ADD, DType::F32, {0, 1});
    weightBytes = f32({2}, {10, 20}).str();
    WeightRef *w = plan.add_weights();
    w->set_name("w");
    w->set_dtype(DType::F32);
    w->add_shape(2);
    w->set_file("weights.bin");
    w->set_offset(8);
    w->set_length(8);
    w->set_sha256(sha256Hex(weightBytes.data(), weightBytes.size()));
  }

  /// Writes weights.bin, the plan (hash into the manifest) and manifest.pb.
  void write() {
    weightsFile = std::string(8, 'J') + weightBytes + "TAIL";
    writeFile(dir.file("weights.bin"), weightsFile);
    std::string planBytes = plan.SerializeAsString();
    writeFile(dir.file("rank0.plan.pb"), planBytes);
    if (manifest.ranks(0).plan_sha256().empty())
      manifest.mutable_ranks(0)->set_plan_sha256(
          sha256Hex(planBytes.data(), planBytes.size()));
    writeFile(dir.file("manifest.pb"), manifest.SerializeAsString());
  }

  /// Reads and loads rank 0; the first error, or "" on success.
  std::string load() {
    auto art = readArtifact(dir.path);
    if (!art.ok())
      return art.message();
    artifact = std::move(*art);
    Status s = loadRankWeights(*artifact, 0);
    return s.ok() ? "" : s.message();
  }

  /// Loads, runs on x and returns y (empty on failure).
  std::vector<float> run(std::vector<float> x, uint32_t world = 1) {
    std::string err = load();
    EXPECT_EQ(err, "");
    if (!err.empty())
      return {};
    auto exec = CpuExecutor::create(artifact->ranks[0], {2, world});
    EXPECT_TRUE(exec.ok()) << exec.message();
    if (!exec.ok())
      return {};
    HostTensor in = f32({static_cast<int64_t>(x.size())}, x);
    EXPECT_TRUE((*exec)->setInput(0, in.bytes).ok());
    Status s = (*exec)->run();
    EXPECT_TRUE(s.ok()) << s.message();
    const InTensor &y = (*exec)->output(0);
    HostTensor out{y.dtype, y.shape,
                   std::vector<std::byte>(y.data, y.data + y.bytes())};
    return floats(out);
  }

  TempDir dir;
  Manifest manifest;
  Plan plan;
  std::string weightBytes, weightsFile;
  std::optional<Artifact> artifact;
};

/// A minimal safetensors file holding the named f32 tensors.
std::string
safetensors(const std::vector<std::pair<std::string, HostTensor>> &tensors) {
  std::string json = "{\"__metadata__\":{\"format\":\"pt\"}", data;
  for (auto &[name, t] : tensors) {
    json += ",\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i)
        json += ",";
      json += std::to_string(t.shape[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
            std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.str();
  }
  json += "}  ";
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return out + json + data;
}

} // namespace

TEST(ArtifactReader, ReadsAndRunsATinyArtifact) {
  TinyArtifact a;
  a.write();
  EXPECT_EQ(a.run({1, 2}), (std::vector<float>{11, 22}));
  EXPECT_EQ(a.artifact->ranks[0].weights[0].size, 8u);
}

TEST(ArtifactReader, RefusesOtherFormatVersions) {
  TinyArtifact a;
  a.manifest.set_format_version(3);
  a.write();
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "manifest.pb")) << err;
  EXPECT_TRUE(contains(err, "unsupported artifact format version 3 (this "
                            "runtime reads 2)"))
      << err;
  // Format 1 (untyped step attributes) is named: only recompiling helps.
  TinyArtifact old;
  old.manifest.set_format_version(1);
  old.write();
  err = old.load();
  EXPECT_TRUE(contains(err, "unsupported artifact format version 1 (this "
                            "runtime reads 2): format 1 predates typed step "
                            "attributes; recompile the model"))
      << err;
  TinyArtifact b;
  b.plan.set_format_version(7);
  b.write();
  err = b.load();
  EXPECT_TRUE(contains(err, "rank0.plan.pb: unsupported plan format version "
                            "7"))
      << err;
}

TEST(ArtifactReader, RefusesATamperedPlan) {
  TinyArtifact a;
  a.write();
  std::string plan = readFile(a.dir.file("rank0.plan.pb"));
  plan[plan.size() / 2] ^= 1;
  writeFile(a.dir.file("rank0.plan.pb"), plan);
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "rank0.plan.pb: sha256 mismatch")) << err;
}

TEST(ArtifactReader, RefusesAMissingRankFile) {
  TinyArtifact a;
  a.write();
  std::filesystem::remove(a.dir.file("rank0.plan.pb"));
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "rank 0: plan file: cannot read")) << err;
  EXPECT_TRUE(contains(err, "rank0.plan.pb")) << err;
  // No manifest at all.
  std::filesystem::remove(a.dir.file("manifest.pb"));
  err = a.load();
  EXPECT_TRUE(contains(err, "manifest.pb")) << err;
  EXPECT_TRUE(contains(err, "weft artifact")) << err;
}

TEST(ArtifactReader, RefusesInconsistentManifests) {
  TinyArtifact a;
  a.manifest.set_world_size(2);
  a.write();
  EXPECT_TRUE(contains(a.load(), "world_size 2 but 1 ranks are listed"));
  TinyArtifact b;
  b.manifest.mutable_ranks(0)->set_plan_file("/etc/passwd");
  b.manifest.mutable_ranks(0)->set_plan_sha256("00");
  b.write();
  EXPECT_TRUE(contains(b.load(), "plan_file '/etc/passwd' is absolute"));
  TinyArtifact c;
  c.manifest.mutable_inputs(0)->set_shape(0, 3);
  c.write();
  std::string err = c.load();
  EXPECT_TRUE(contains(err, "inputs[0]: plan buffer 'x' f32 [2] differs from "
                            "the manifest's 'x' f32 [3]"))
      << err;
  TinyArtifact d;
  writeFile(d.dir.file("manifest.pb"), "not a protobuf \xff\xff");
  EXPECT_TRUE(contains(d.load(), "not a Manifest"));
}

TEST(ArtifactReader, RefusesBadBuffers) {
  TinyArtifact a;
  a.plan.mutable_steps(0)->set_inputs(1, 9);
  a.write();
  EXPECT_TRUE(contains(a.load(), "steps[0] 'add': input buffer id 9 does not "
                                 "exist"));
  TinyArtifact b;
  b.plan.mutable_buffers(2)->set_offset(124);
  b.write();
  std::string berr = b.load();
  EXPECT_TRUE(contains(berr, "offset 124 + 8 bytes is past arena_bytes 128"))
      << berr;
  TinyArtifact c;
  c.plan.mutable_buffers(0)->set_bytes(12);
  c.write();
  EXPECT_TRUE(contains(c.load(), "buffers[0] (id 0): bytes 12 does not match "
                                 "shape [2] of f32 (8)"));
  TinyArtifact d;
  d.plan.mutable_buffers(1)->set_weight(4);
  d.write();
  EXPECT_TRUE(contains(d.load(), "weight 4 is not in Plan.weights"));
  TinyArtifact e;
  e.plan.mutable_steps(0)->set_outputs(0, 1);
  e.write();
  EXPECT_TRUE(contains(e.load(), "writes buffer 1 of kind WEIGHT"));
}

TEST(ArtifactReader, RefusesTamperedWeightBytes) {
  TinyArtifact a;
  a.write();
  std::string w = a.weightsFile;
  w[9] ^= 1; // inside the referenced range
  writeFile(a.dir.file("weights.bin"), w);
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "weight 'w': ")) << err;
  EXPECT_TRUE(contains(err, "weights.bin: sha256 mismatch of bytes [8, 16)"))
      << err;
  // Bytes outside the range are not hashed.
  w = a.weightsFile;
  w[0] = 'X';
  writeFile(a.dir.file("weights.bin"), w);
  EXPECT_EQ(a.load(), "");
}

TEST(ArtifactReader, RefusesWeightRangesPastTheEnd) {
  TinyArtifact a;
  a.write();
  writeFile(a.dir.file("weights.bin"), a.weightsFile.substr(0, 12));
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "range [8, 8 + 8) is past the end of the file (12 "
                            "bytes)"))
      << err;
  std::filesystem::remove(a.dir.file("weights.bin"));
  err = a.load();
  EXPECT_TRUE(contains(err, "weights.bin")) << err;
  EXPECT_TRUE(contains(err, "No such file")) << err;
  TinyArtifact b;
  b.plan.mutable_weights(0)->set_length(12);
  b.write();
  EXPECT_TRUE(contains(b.load(), "length 12 does not match shape [2]"));
}

TEST(ArtifactReader, ReadsWeightsRelativeToTheModel) {
  TinyArtifact a;
  a.plan.mutable_weights(0)->set_relative_to_model(true);
  a.plan.mutable_weights(0)->set_file("model.onnx.data");
  a.write();
  std::filesystem::create_directories(a.dir.file("model"));
  writeFile(a.dir.file("model/model.onnx.data"), a.weightsFile);
  EXPECT_EQ(a.run({0, 1}), (std::vector<float>{10, 21}));
  a.manifest.set_source_model("model.onnx");
  a.write();
  EXPECT_TRUE(contains(a.load(), "is not an absolute path"));
}

TEST(ArtifactReader, ReadsModelWeightsFromAnotherDirectory) {
  TinyArtifact a;
  a.plan.mutable_weights(0)->set_relative_to_model(true);
  a.plan.mutable_weights(0)->set_file("model.onnx.data");
  a.plan.mutable_weights(0)->clear_sha256(); // compiled without the file
  a.write();
  std::filesystem::create_directories(a.dir.file("moved"));
  writeFile(a.dir.file("moved/model.onnx.data"), a.weightsFile);
  auto art = readArtifact(a.dir.path);
  ASSERT_TRUE(art.ok()) << art.message();
  // Beside source_model (model/) there is nothing.
  EXPECT_TRUE(
      contains(loadRankWeights(*art, 0).message(), "model/model.onnx.data"));
  art = readArtifact(a.dir.path);
  ASSERT_TRUE(art.ok()) << art.message();
  ASSERT_TRUE(setSourceModelDir(art->manifest, a.dir.file("moved")).ok());
  EXPECT_EQ(art->manifest.source_model(), a.dir.file("moved/model.onnx"));
  Status s = loadRankWeights(*art, 0);
  ASSERT_TRUE(s.ok()) << s.message();
  const WeightBytes &w = art->ranks[0].weights[0];
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(w.data), w.size),
            a.weightBytes);
  // A path that is not a directory leaves the manifest as it was.
  Status bad = setSourceModelDir(art->manifest, a.dir.file("weights.bin"));
  EXPECT_TRUE(contains(bad.message(), "weights.bin' is not a directory"));
  EXPECT_EQ(art->manifest.source_model(), a.dir.file("moved/model.onnx"));
}

TEST(ArtifactReader, ReadsPackedSafetensorsWeights) {
  TinyArtifact a;
  std::string packed =
      safetensors({{"other", f32({1}, {5})}, {"w", f32({2}, {100, 200})}});
  a.manifest.mutable_ranks(0)->set_weights_file("rank0.weights.safetensors");
  a.manifest.mutable_ranks(0)->set_weights_sha256(
      sha256Hex(packed.data(), packed.size()));
  WeightRef *w = a.plan.mutable_weights(0);
  w->set_file("rank0.weights.safetensors");
  w->set_offset(packed.size() - 8); // absolute, as the proto says
  w->clear_sha256();
  a.write();
  writeFile(a.dir.file("rank0.weights.safetensors"), packed);
  EXPECT_EQ(a.run({1, 1}), (std::vector<float>{101, 201}));
  // An offset that disagrees with the header.
  w->set_offset(8);
  a.manifest.mutable_ranks(0)->clear_plan_sha256();
  a.write();
  writeFile(a.dir.file("rank0.weights.safetensors"), packed);
  EXPECT_TRUE(contains(a.load(), "differs from the header's"));
  // A tensor the file lacks.
  w->set_offset(0);
  w->set_length(0);
  w->set_name("missing");
  a.plan.mutable_weights(0)->set_length(8);
  a.manifest.mutable_ranks(0)->clear_plan_sha256();
  a.write();
  writeFile(a.dir.file("rank0.weights.safetensors"), packed);
  EXPECT_TRUE(contains(a.load(), "no tensor named 'missing'"));
  // The whole file's hash.
  packed.back() ^= 1;
  writeFile(a.dir.file("rank0.weights.safetensors"), packed);
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "rank0.weights.safetensors: sha256 mismatch"))
      << err;
}

TEST(ArtifactReader, CopiesOutSlices) {
  // The weight is [2, 2] = [[10, 20], [30, 40]]; the rank holds row 1.
  TinyArtifact a;
  a.weightBytes = f32({2, 2}, {10, 20, 30, 40}).str();
  WeightRef *w = a.plan.mutable_weights(0);
  w->set_shape(0, 2);
  w->add_shape(2);
  w->set_length(16);
  w->set_sha256(sha256Hex(a.weightBytes.data(), a.weightBytes.size()));
  w->add_slice_begin(1);
  w->add_slice_begin(0);
  w->add_slice_size(1);
  w->add_slice_size(2);
  a.write();
  EXPECT_EQ(a.run({1, 2}), (std::vector<float>{31, 42}));
  w->set_slice_size(0, 2);
  a.manifest.mutable_ranks(0)->clear_plan_sha256();
  a.write();
  EXPECT_TRUE(contains(a.load(), "slice [1, 1 + 2) of dim 0 is outside"));
}

TEST(ArtifactReader, ConvertsWeightsStoredInAnotherFloatType) {
  // Stored f32, used as bf16 (a bf16 compute plan).
  TinyArtifact a;
  for (int i = 0; i < 3; ++i) {
    a.plan.mutable_buffers(i)->set_dtype(DType::BF16);
    a.plan.mutable_buffers(i)->set_bytes(4);
    a.plan.mutable_steps(0)->mutable_program(i)->set_dtype(DType::BF16);
  }
  a.manifest.mutable_inputs(0)->set_dtype(DType::BF16);
  a.manifest.mutable_outputs(0)->set_dtype(DType::BF16);
  a.weightBytes = f32({2}, {1.0f + 0x1p-9f, 3}).str(); // rounds to 1
  a.plan.mutable_weights(0)->set_sha256(
      sha256Hex(a.weightBytes.data(), a.weightBytes.size()));
  a.write();
  ASSERT_EQ(a.load(), "");
  auto exec = CpuExecutor::create(a.artifact->ranks[0]);
  ASSERT_TRUE(exec.ok()) << exec.message();
  HostTensor x = bf16({2}, {1, 1});
  ASSERT_TRUE((*exec)->setInput(0, x.bytes).ok());
  ASSERT_TRUE((*exec)->run().ok());
  const InTensor &y = (*exec)->output(0);
  HostTensor out{y.dtype, y.shape,
                 std::vector<std::byte>(y.data, y.data + y.bytes())};
  EXPECT_EQ(floats(out), (std::vector<float>{2, 4}));
}

TEST(Executor, StagesOutputsThatOverlapInputs) {
  // A transpose written over its own input must still be right.
  TinyArtifact a;
  Plan &p = a.plan;
  p.mutable_buffers(0)->clear_shape();
  p.mutable_buffers(0)->add_shape(2);
  p.mutable_buffers(0)->add_shape(3);
  p.mutable_buffers(0)->set_bytes(24);
  p.mutable_buffers(2)->clear_shape();
  p.mutable_buffers(2)->add_shape(3);
  p.mutable_buffers(2)->add_shape(2);
  p.mutable_buffers(2)->set_bytes(24);
  p.mutable_buffers(2)->set_offset(0);
  p.clear_steps();
  Step *t = p.add_steps();
  t->set_kind(Step::TRANSPOSE);
  t->add_inputs(0);
  t->add_outputs(2);
  for (int64_t v : {1, 0})
    t->mutable_transpose()->add_perm(v);
  for (auto *spec :
       {a.manifest.mutable_inputs(0), a.manifest.mutable_outputs(0)})
    spec->clear_shape();
  a.manifest.mutable_inputs(0)->add_shape(2);
  a.manifest.mutable_inputs(0)->add_shape(3);
  a.manifest.mutable_outputs(0)->add_shape(3);
  a.manifest.mutable_outputs(0)->add_shape(2);
  a.write();
  EXPECT_EQ(a.run({1, 2, 3, 4, 5, 6}), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(ArtifactReader, RefusesStepsWithoutTheirKindsAttrs) {
  // A GEMM step must carry GemmAttrs; the reader names the step.
  TinyArtifact a;
  Step *step = a.plan.mutable_steps(0);
  step->set_kind(Step::GEMM);
  step->set_name("proj");
  a.write();
  std::string err = a.load();
  EXPECT_TRUE(contains(err, "rank0.plan.pb: steps[0] 'proj': GEMM step "
                            "'proj' carries no GemmAttrs"))
      << err;
  // Another kind's attributes are no substitute.
  step->mutable_norm()->set_axis(-1);
  a.manifest.mutable_ranks(0)->clear_plan_sha256();
  a.write();
  err = a.load();
  EXPECT_TRUE(contains(err, "GEMM step 'proj' carries NormAttrs, expected "
                            "GemmAttrs"))
      << err;
  // A kind without attributes carries none.
  TinyArtifact b;
  b.plan.mutable_steps(0)->mutable_gemm();
  b.write();
  err = b.load();
  EXPECT_TRUE(contains(err, "ELEMENTWISE step 'add' takes no attributes but "
                            "carries GemmAttrs"))
      << err;
}

TEST(Executor, RefusesMultiRankStepsAndBadSteps) {
  TinyArtifact a;
  Step *collective = a.plan.mutable_steps(0);
  collective->set_kind(Step::COLLECTIVE);
  collective->mutable_collective()->set_op(0);
  collective->mutable_collective()->add_group(0);
  a.write();
  ASSERT_EQ(a.load(), "");
  auto exec = CpuExecutor::create(a.artifact->ranks[0], {1, 2});
  ASSERT_FALSE(exec.ok());
  EXPECT_TRUE(contains(exec.message(), "step 0 'add' (COLLECTIVE): needs 2 "
                                       "ranks, but this rank runs alone"))
      << exec.message();
  TinyArtifact b;
  b.plan.mutable_steps(0)->mutable_program(2)->set_op(Instr::LT);
  b.write();
  ASSERT_EQ(b.load(), "");
  exec = CpuExecutor::create(b.artifact->ranks[0]);
  ASSERT_FALSE(exec.ok());
  EXPECT_TRUE(contains(exec.message(), "step 0 'add' (ELEMENTWISE): "
                                       "program[2]: LT must yield bool"))
      << exec.message();
}

TEST(Executor, ReportsDataErrorsWithTheStep) {
  // An embedding whose id input is out of range fails at run time.
  TinyArtifact a;
  Plan &p = a.plan;
  p.mutable_buffers(0)->set_dtype(DType::I64);
  p.mutable_buffers(0)->clear_shape();
  p.mutable_buffers(0)->add_shape(1);
  p.mutable_buffers(2)->clear_shape();
  p.mutable_buffers(2)->add_shape(1);
  p.mutable_buffers(2)->add_shape(2);
  p.mutable_buffers(1)->clear_shape();
  p.mutable_buffers(1)->add_shape(1);
  p.mutable_buffers(1)->add_shape(2);
  p.mutable_weights(0)->clear_shape();
  p.mutable_weights(0)->add_shape(1);
  p.mutable_weights(0)->add_shape(2);
  Step *e = p.mutable_steps(0);
  e->set_kind(Step::EMBEDDING);
  e->mutable_embedding();
  e->set_location("node_embed");
  e->clear_program();
  e->clear_inputs();
  e->add_inputs(1);
  e->add_inputs(0);
  a.manifest.mutable_inputs(0)->set_dtype(DType::I64);
  a.manifest.mutable_inputs(0)->set_shape(0, 1);
  a.manifest.mutable_outputs(0)->add_shape(2);
  a.manifest.mutable_outputs(0)->set_shape(0, 1);
  a.write();
  ASSERT_EQ(a.load(), "");
  auto exec = CpuExecutor::create(a.artifact->ranks[0]);
  ASSERT_TRUE(exec.ok()) << exec.message();
  HostTensor ids = i64({1}, {5});
  ASSERT_TRUE((*exec)->setInput(0, ids.bytes).ok());
  Status s = (*exec)->run();
  EXPECT_TRUE(contains(s.message(), "step 0 'add' (EMBEDDING, node_embed): "
                                    "embedding id: index 5"))
      << s.message();
  EXPECT_FALSE((*exec)->setInput(0, f32({3}, {1, 2, 3}).bytes).ok());
}

TEST(PlanValidator, AcceptsPagedKVCachesSizedByTheBlock) {
  Status s = validatePlan(pagedAttentionPlan(), "p.pb", 1);
  EXPECT_TRUE(s.ok()) << s.message();
  // `bytes` is one block's, never the (empty) whole.
  Plan whole = pagedAttentionPlan();
  whole.mutable_buffers(3)->set_bytes(0);
  s = validatePlan(whole, "p.pb", 1);
  EXPECT_TRUE(contains(s.message(), "p.pb: buffers[3] (id 3): bytes 0 does "
                                    "not match shape [0, 2, 1, 2] of f32 (16 "
                                    "per block)"))
      << s.message();
}

TEST(PlanValidator, RefusesPagedAttentionOverCachesThatAreNotState) {
  Plan plan = pagedAttentionPlan();
  Buffer *cache = plan.mutable_buffers(4);
  cache->set_kind(Buffer::ARENA);
  cache->set_shape(0, 1);
  cache->set_offset(256);
  Status s = validatePlan(plan, "p.pb", 1);
  EXPECT_TRUE(contains(s.message(),
                       "steps[0] 'attention': input 4 (buffer 4 of kind "
                       "ARENA) is a KV cache the step writes: it must be a "
                       "STATE buffer"))
      << s.message();
  plan = pagedAttentionPlan();
  plan.mutable_entry_points(0)->mutable_steps(0)->mutable_inputs()->Truncate(4);
  s = validatePlan(plan, "p.pb", 1);
  EXPECT_TRUE(contains(s.message(), "PAGED_ATTENTION has 4 inputs; its KV "
                                    "caches are inputs 3 and 4"))
      << s.message();
}

TEST(PlanValidator, StillRefusesUnknownStepKinds) {
  Plan plan = pagedAttentionPlan();
  weft::artifact::Step *step = plan.mutable_entry_points(0)->mutable_steps(0);
  step->set_kind(static_cast<Step::Kind>(27));
  step->clear_attrs();
  Status s = validatePlan(plan, "p.pb", 1);
  EXPECT_TRUE(contains(s.message(), "steps[0] 'attention': unknown kind 27"))
      << s.message();
}

TEST(PlanValidator, RefusesPagedAttentionOutputsOverItsInputs) {
  Plan plan = pagedAttentionPlan();
  plan.mutable_buffers(8)->set_offset(0);
  Status s = validatePlan(plan, "p.pb", 1);
  EXPECT_TRUE(contains(s.message(), "output buffer 8 overlaps input buffer 0 "
                                    "in the arena, which PAGED_ATTENTION does "
                                    "not allow"))
      << s.message();
}
