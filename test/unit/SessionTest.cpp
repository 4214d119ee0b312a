// Unit tests of the session API: an artifact opened once, entry points run
// many times, state buffers kept between runs.
#include "runtime/session/Session.h"
#include "runtime/artifact/Sha256.h"
#include "runtime/comm/InProcessTransport.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

using namespace weft::runtime;
using namespace weft::runtime::test;
using weft::artifact::Buffer;
using weft::artifact::Instr;
using weft::artifact::Plan;
using weft::artifact::Step;

namespace {

Buffer *addBuffer(Plan &plan, uint32_t id, Buffer::Kind kind,
                  const std::string &name, uint64_t offset = 0) {
  Buffer *b = plan.add_buffers();
  b->set_id(id);
  b->set_kind(kind);
  b->set_dtype(DType::F32);
  b->add_shape(2);
  b->set_offset(offset);
  b->set_bytes(8);
  b->set_name(name);
  return b;
}

/// A counter over f32 [2]: "forward" adds input x into the state buffer
/// "total" and copies it to output y; the entry "peek" only copies it, to
/// y and to a second output z.
struct CounterArtifact {
  CounterArtifact() {
    weft::artifact::Manifest manifest;
    manifest.set_format_version(kArtifactFormatVersion);
    manifest.set_world_size(1);
    for (const char *name : {"x", "y"}) {
      auto *spec =
          name[0] == 'x' ? manifest.add_inputs() : manifest.add_outputs();
      spec->set_name(name);
      spec->set_dtype(DType::F32);
      spec->add_shape(2);
    }
    Plan plan;
    plan.set_format_version(kArtifactFormatVersion);
    plan.set_arena_bytes(128);
    addBuffer(plan, 0, Buffer::INPUT, "x", 0);
    addBuffer(plan, 1, Buffer::STATE, "total");
    addBuffer(plan, 2, Buffer::OUTPUT, "y", 64);
    addBuffer(plan, 3, Buffer::OUTPUT, "z", 96);
    plan.add_inputs(0);
    plan.add_outputs(2);
    Step *add = plan.add_steps();
    add->set_kind(Step::ELEMENTWISE);
    add->set_name("accumulate");
    add->add_inputs(1);
    add->add_inputs(0);
    add->add_outputs(1);
    *add->add_program() = instr(Instr::INPUT, DType::F32, {}, 0);
    *add->add_program() = instr(Instr::INPUT, DType::F32, {}, 1);
    *add->add_program() = instr(Instr::ADD, DType::F32, {0, 1});
    *plan.add_steps() = copyStep();
    weft::artifact::EntryPoint *peek = plan.add_entry_points();
    peek->set_name("peek");
    peek->add_outputs(2);
    peek->add_outputs(3);
    *peek->add_steps() = copyStep();
    *peek->add_steps() = copyStep(3);

    std::string planBytes = plan.SerializeAsString();
    writeFile(dir.file("rank0.plan.pb"), planBytes);
    auto *rank = manifest.add_ranks();
    rank->set_plan_file("rank0.plan.pb");
    rank->set_plan_sha256(sha256Hex(planBytes.data(), planBytes.size()));
    writeFile(dir.file("manifest.pb"), manifest.SerializeAsString());
  }

  static Step copyStep(uint32_t to = 2) {
    Step copy;
    copy.set_kind(Step::COPY);
    copy.set_name("read");
    copy.add_inputs(1);
    copy.add_outputs(to);
    return copy;
  }

  TempDir dir;
};

NpyArray input(std::vector<float> values) {
  HostTensor t = f32({2}, std::move(values));
  return NpyArray{"x", DType::F32, {2}, t.bytes};
}

std::vector<float> floatsOf(const NpyArray &a) {
  std::vector<float> v(a.data.size() / sizeof(float));
  std::memcpy(v.data(), a.data.data(), a.data.size());
  return v;
}

/// Opens rank 0 of the counter over an in-process transport of one rank.
struct OpenCounter {
  OpenCounter() : world(1, std::chrono::seconds(10)) {
    auto read = readManifest(counter.dir.path);
    EXPECT_TRUE(read.ok()) << read.message();
    artifact = std::move(*read);
    transport = world.transport(0);
    auto opened = Session::open(artifact, 0, transport.get(), {});
    EXPECT_TRUE(opened.ok()) << opened.message();
    if (opened.ok())
      session = std::move(*opened);
  }

  CounterArtifact counter;
  Artifact artifact;
  comm::InProcessWorld world;
  std::unique_ptr<comm::Transport> transport;
  std::unique_ptr<Session> session;
};

TEST(Session, ListsItsEntryPointsForwardFirst) {
  OpenCounter c;
  ASSERT_TRUE(c.session);
  EXPECT_EQ(c.session->entryPoints(),
            (std::vector<std::string>{"forward", "peek"}));
}

TEST(Session, StateBuffersKeepTheirContentsAcrossRuns) {
  OpenCounter c;
  ASSERT_TRUE(c.session);
  NpyArray x = input({1, 2});
  const NpyArray *inputs[] = {&x};
  for (float n = 1; n <= 3; ++n) {
    auto out = c.session->run("forward", inputs);
    ASSERT_TRUE(out.ok()) << out.message();
    ASSERT_EQ(out->outputs.size(), 1u);
    EXPECT_EQ(out->outputs[0].name, "y");
    EXPECT_EQ(floatsOf(out->outputs[0]), (std::vector<float>{n, 2 * n}));
  }
  // Another entry point sees the same state, and leaves it as it is.
  auto peek = c.session->run("peek", {});
  ASSERT_TRUE(peek.ok()) << peek.message();
  EXPECT_EQ(floatsOf(peek->outputs[0]), (std::vector<float>{3, 6}));
  auto again = c.session->run("forward", inputs);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(floatsOf(again->outputs[0]), (std::vector<float>{4, 8}));
}

TEST(Session, GivesBackOnlyTheOutputsAsked) {
  OpenCounter c;
  ASSERT_TRUE(c.session);
  NpyArray x = input({2, 5});
  const NpyArray *inputs[] = {&x};
  ASSERT_TRUE(c.session->run("forward", inputs).ok());
  auto all = c.session->run("peek", {});
  ASSERT_TRUE(all.ok()) << all.message();
  ASSERT_EQ(all->outputs.size(), 2u);
  EXPECT_EQ(all->outputs[0].name, "y");
  EXPECT_EQ(all->outputs[1].name, "z");
  // Names the plan has no output of are passed over (a pipeline stage
  // without the sampled ids gives back nothing).
  const std::string onlyZ[] = {"z", "weft.next_ids"};
  auto some = c.session->run("peek", {}, onlyZ);
  ASSERT_TRUE(some.ok()) << some.message();
  ASSERT_EQ(some->outputs.size(), 1u);
  EXPECT_EQ(some->outputs[0].name, "z");
  EXPECT_EQ(floatsOf(some->outputs[0]), (std::vector<float>{2, 5}));
  const std::string none[] = {"weft.next_ids"};
  auto nothing = c.session->run("peek", {}, none);
  ASSERT_TRUE(nothing.ok()) << nothing.message();
  EXPECT_TRUE(nothing->outputs.empty());
}

TEST(Session, AFreshSessionStartsFromZeroedState) {
  OpenCounter first, second;
  ASSERT_TRUE(first.session && second.session);
  NpyArray x = input({5, 7});
  const NpyArray *inputs[] = {&x};
  ASSERT_TRUE(first.session->run("forward", inputs).ok());
  auto out = second.session->run("forward", inputs);
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(floatsOf(out->outputs[0]), (std::vector<float>{5, 7}));
}

TEST(Session, RefusesAnUnknownEntryPoint) {
  OpenCounter c;
  ASSERT_TRUE(c.session);
  auto out = c.session->run("decode", {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.message(), "the artifact has no entry point 'decode' (it has: "
                           "forward, peek)");
}

TEST(Session, RunsARankAloneWithoutATransport) {
  CounterArtifact counter;
  auto artifact = readManifest(counter.dir.path);
  ASSERT_TRUE(artifact.ok()) << artifact.message();
  auto session = Session::open(*artifact, 0, nullptr, {});
  ASSERT_TRUE(session.ok()) << session.message();
  NpyArray x = input({1, 1});
  const NpyArray *inputs[] = {&x};
  ASSERT_TRUE((*session)->run("forward", inputs).ok());
  auto out = (*session)->run("forward", inputs);
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(floatsOf(out->outputs[0]), (std::vector<float>{2, 2}));
}

TEST(Session, RefusesDuplicateOrForwardEntryNames) {
  CounterArtifact counter;
  auto artifact = readManifest(counter.dir.path);
  ASSERT_TRUE(artifact.ok());
  auto plan = readRankPlan(*artifact, 0);
  ASSERT_TRUE(plan.ok()) << plan.message();
  weft::artifact::Plan bad = plan->plan;
  bad.mutable_entry_points(0)->set_name("forward");
  Status s = validatePlan(bad, "rank0.plan.pb", 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("entry_points[0] 'forward': name is empty, "
                             "\"forward\" or repeated"),
            std::string::npos)
      << s.message();
}

/// The artifact of pagedAttentionPlan() (RuntimeTestUtil.h).
struct PagedCacheArtifact {
  PagedCacheArtifact() {
    weft::artifact::Manifest manifest;
    manifest.set_format_version(kArtifactFormatVersion);
    manifest.set_world_size(1);
    Plan plan = pagedAttentionPlan();
    std::string planBytes = plan.SerializeAsString();
    writeFile(dir.file("rank0.plan.pb"), planBytes);
    auto *rank = manifest.add_ranks();
    rank->set_plan_file("rank0.plan.pb");
    rank->set_plan_sha256(sha256Hex(planBytes.data(), planBytes.size()));
    writeFile(dir.file("manifest.pb"), manifest.SerializeAsString());
  }

  TempDir dir;
};

/// The inputs of "attend": one token of row 0 at `position`.
std::vector<NpyArray> attendInputs(std::vector<float> q, std::vector<float> k,
                                   std::vector<float> v, int64_t position,
                                   std::vector<int32_t> blockTable) {
  auto array = [](const char *name, const HostTensor &t) {
    return NpyArray{name, t.dtype, t.shape, t.bytes};
  };
  return {array("q", f32({1, 1, 1, 2}, std::move(q))),
          array("k", f32({1, 1, 1, 2}, std::move(k))),
          array("v", f32({1, 1, 1, 2}, std::move(v))),
          array("positions", i64({1, 1}, {position})),
          array("token_seq", i32({1}, {0})),
          array("block_tables", i32({1, 2}, std::move(blockTable)))};
}

Result<RankOutcome> runAttend(Session &session,
                              const std::vector<NpyArray> &arrays) {
  std::vector<const NpyArray *> inputs;
  for (const NpyArray &a : arrays)
    inputs.push_back(&a);
  return session.run("attend", inputs);
}

TEST(Session, AllocatesThePagedKVCacheItIsGiven) {
  PagedCacheArtifact paged;
  auto artifact = readManifest(paged.dir.path);
  ASSERT_TRUE(artifact.ok()) << artifact.message();
  SessionOptions options;
  options.kvCacheBlocks = 3;
  auto session = Session::open(*artifact, 0, nullptr, options);
  ASSERT_TRUE(session.ok()) << session.message();
  // Position 0 in block 2 (the cache's last), then position 1 beside it:
  // the second run reads the first's k and v from the cache.
  auto first =
      runAttend(**session, attendInputs({1, 0}, {1, 0}, {10, 20}, 0, {2, 0}));
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_EQ(floatsOf(first->outputs[0]), (std::vector<float>{10, 20}));
  auto second =
      runAttend(**session, attendInputs({0, 0}, {0, 1}, {30, 40}, 1, {2, 0}));
  ASSERT_TRUE(second.ok()) << second.message();
  EXPECT_EQ(floatsOf(second->outputs[0]), (std::vector<float>{20, 30}));
  // Block 3 is past the 3 blocks the session gave.
  auto past =
      runAttend(**session, attendInputs({0, 0}, {0, 1}, {30, 40}, 1, {3, 0}));
  ASSERT_FALSE(past.ok());
  EXPECT_NE(past.message().find("block_tables[0][0] = 3 is not a block of "
                                "the KV cache (3 blocks)"),
            std::string::npos)
      << past.message();
}

TEST(Session, RefusesAPagedKVCacheWithoutItsBlocks) {
  PagedCacheArtifact paged;
  auto artifact = readManifest(paged.dir.path);
  ASSERT_TRUE(artifact.ok()) << artifact.message();
  auto session = Session::open(*artifact, 0, nullptr, {});
  ASSERT_FALSE(session.ok());
  EXPECT_NE(session.message().find(
                "rank0.plan.pb: the artifact has a paged KV cache (state "
                "buffer 'k_cache'): give its number of blocks"),
            std::string::npos)
      << session.message();
  // Blocks whose bytes overflow, or that no machine holds.
  SessionOptions options;
  options.kvCacheBlocks = uint64_t{1} << 62;
  session = Session::open(*artifact, 0, nullptr, options);
  ASSERT_FALSE(session.ok());
  EXPECT_NE(session.message().find("state buffer 'k_cache': "
                                   "4611686018427387904 blocks of 16 bytes "
                                   "overflow"),
            std::string::npos)
      << session.message();
  options.kvCacheBlocks = uint64_t{1} << 58;
  session = Session::open(*artifact, 0, nullptr, options);
  ASSERT_FALSE(session.ok());
  EXPECT_NE(session.message().find(
                "cannot allocate state buffer 'k_cache' (288230376151711744 "
                "KV-cache blocks) of 4611686018427387904 bytes"),
            std::string::npos)
      << session.message();
}

} // namespace
