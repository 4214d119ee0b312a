// Unit tests of multi-rank execution: tiny 2- and 4-rank artifacts run as
// threads over the in-process transport (all-reduce, all-gather, groups,
// send/recv pipelines, vocab-parallel embeddings, failures), the transport
// itself (order of sums, dtypes, timeouts, deadlocks) and the reader's
// checks of multi-rank artifacts.
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/Sha256.h"
#include "runtime/comm/InProcessTransport.h"
#include "runtime/session/MultiRank.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <functional>
#include <memory>
#include <thread>

using namespace weft::runtime;
using namespace weft::runtime::test;
using weft::artifact::Buffer;
using weft::artifact::Instr;
using weft::artifact::Manifest;
using weft::artifact::Plan;
using weft::artifact::Step;
using weft::artifact::WeightRef;
using Clock = std::chrono::steady_clock;

namespace {

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Adds buffers and steps to one rank's plan; arena buffers are placed one
/// after another, 64-byte aligned.
class PlanBuilder {
public:
  explicit PlanBuilder(Plan &plan) : plan(plan) {}

  uint32_t arena(DType dtype, const Shape &shape) {
    return add(Buffer::ARENA, dtype, shape)->id();
  }
  uint32_t input(const std::string &name, DType dtype, const Shape &shape) {
    Buffer *b = add(Buffer::INPUT, dtype, shape);
    b->set_name(name);
    plan.add_inputs(b->id());
    return b->id();
  }
  uint32_t output(const std::string &name, DType dtype, const Shape &shape) {
    Buffer *b = add(Buffer::OUTPUT, dtype, shape);
    b->set_name(name);
    plan.add_outputs(b->id());
    return b->id();
  }
  uint32_t constant(const HostTensor &t) {
    Buffer *b = add(Buffer::CONSTANT, t.dtype, t.shape);
    b->set_data(t.str());
    return b->id();
  }
  /// A weight buffer of Plan.weights[index] (its held slice's shape).
  uint32_t weight(uint32_t index, DType dtype, const Shape &shape) {
    Buffer *b = add(Buffer::WEIGHT, dtype, shape);
    b->set_weight(index);
    return b->id();
  }

  Step *step(Step::Kind kind, std::initializer_list<uint32_t> inputs,
             std::initializer_list<uint32_t> outputs, const std::string &name,
             std::initializer_list<std::pair<const char *, int64_t>> ints = {},
             std::initializer_list<std::pair<const char *, Shape>> lists = {}) {
    Step *s = plan.add_steps();
    s->set_kind(kind);
    s->set_name(name);
    for (uint32_t id : inputs)
      s->add_inputs(id);
    for (uint32_t id : outputs)
      s->add_outputs(id);
    if (attrsCaseFor(kind) != Step::ATTRS_NOT_SET)
      stepAttrs(*s);
    for (auto &[k, v] : ints)
      setAttr(*s, k, v);
    for (auto &[k, v] : lists)
      setAttr(*s, k, v);
    return s;
  }

  /// out = a OP b, elementwise (b broadcast).
  Step *binary(Instr::Op op, uint32_t a, uint32_t b, uint32_t out,
               DType dtype = DType::F32) {
    Step *s = step(Step::ELEMENTWISE, {a, b}, {out}, "binary");
    *s->add_program() = instr(Instr::INPUT, dtype, {}, 0);
    *s->add_program() = instr(Instr::INPUT, dtype, {}, 1);
    *s->add_program() = instr(op, dtype, {0, 1});
    return s;
  }

  Step *allReduce(uint32_t in, uint32_t out, const Shape &group) {
    return step(Step::COLLECTIVE, {in}, {out}, "all_reduce", {{"op", 0}},
                {{"group", group}});
  }
  Step *allGather(uint32_t in, uint32_t out, int64_t axis, const Shape &group) {
    return step(Step::COLLECTIVE, {in}, {out}, "all_gather",
                {{"op", 1}, {"axis", axis}}, {{"group", group}});
  }

private:
  Buffer *add(Buffer::Kind kind, DType dtype, const Shape &shape) {
    Buffer *b = plan.add_buffers();
    b->set_id(plan.buffers_size() - 1);
    b->set_kind(kind);
    b->set_dtype(dtype);
    for (int64_t d : shape)
      b->add_shape(d);
    uint64_t bytes = numElements(shape) * dtypeSize(dtype);
    b->set_bytes(bytes);
    if (kind == Buffer::ARENA || kind == Buffer::INPUT ||
        kind == Buffer::OUTPUT) {
      b->set_offset(plan.arena_bytes());
      plan.set_arena_bytes(plan.arena_bytes() + (bytes + 63) / 64 * 64);
    }
    return b;
  }

  Plan &plan;
};

/// A multi-rank artifact in a temp dir: a manifest, one plan per rank and
/// an optional weights.bin shared by the ranks.
struct MultiRankArtifact {
  explicit MultiRankArtifact(uint32_t world) : plans(world) {
    manifest.set_format_version(kArtifactFormatVersion);
    manifest.set_world_size(world);
    manifest.set_target("cpu");
    for (uint32_t r = 0; r < world; ++r) {
      plans[r].set_format_version(kArtifactFormatVersion);
      plans[r].set_rank(r);
    }
  }

  PlanBuilder rank(uint32_t r) { return PlanBuilder(plans[r]); }

  void input(const std::string &name, DType dtype, const Shape &shape) {
    spec(manifest.add_inputs(), name, dtype, shape);
  }
  void output(const std::string &name, DType dtype, const Shape &shape) {
    spec(manifest.add_outputs(), name, dtype, shape);
  }

  /// A weight of weights.bin (appended) that rank `r` holds the slice
  /// [begin, begin + size) of; its index in the rank's Plan.weights.
  uint32_t weight(uint32_t r, const std::string &name, const HostTensor &t,
                  const Shape &begin, const Shape &size) {
    WeightRef *w = plans[r].add_weights();
    w->set_name(name);
    w->set_dtype(t.dtype);
    for (int64_t d : t.shape)
      w->add_shape(d);
    w->set_file("weights.bin");
    w->set_offset(weights.size());
    w->set_length(t.bytes.size());
    w->set_sha256(sha256Hex(t.bytes.data(), t.bytes.size()));
    for (int64_t b : begin)
      w->add_slice_begin(b);
    for (int64_t s : size)
      w->add_slice_size(s);
    weights += t.str();
    return plans[r].weights_size() - 1;
  }

  void write() {
    manifest.clear_ranks();
    for (size_t r = 0; r < plans.size(); ++r) {
      std::string file = "rank" + std::to_string(r) + ".plan.pb";
      std::string bytes = plans[r].SerializeAsString();
      writeFile(dir.file(file), bytes);
      auto *entry = manifest.add_ranks();
      entry->set_rank(r);
      entry->set_plan_file(file);
      entry->set_plan_sha256(sha256Hex(bytes.data(), bytes.size()));
    }
    // A stated layout states every degree: the reader refuses a 0.
    if (manifest.tp() || manifest.pp() || manifest.dp()) {
      manifest.set_tp(std::max(manifest.tp(), 1u));
      manifest.set_pp(std::max(manifest.pp(), 1u));
      manifest.set_dp(std::max(manifest.dp(), 1u));
      manifest.set_microbatches(std::max(manifest.microbatches(), 1u));
    }
    writeFile(dir.file("weights.bin"), weights);
    writeFile(dir.file("manifest.pb"), manifest.SerializeAsString());
  }

  /// Writes, then runs every rank on `inputs` (manifest order).
  Result<std::vector<NpyArray>> run(const std::vector<HostTensor> &inputs,
                                    std::vector<Status> *statuses = nullptr,
                                    double timeoutSeconds = 60) {
    write();
    auto artifact = readManifest(dir.path);
    if (!artifact.ok())
      return artifact.status();
    std::vector<NpyArray> arrays;
    for (int i = 0; i < manifest.inputs_size(); ++i)
      arrays.push_back(NpyArray{manifest.inputs(i).name(), inputs[i].dtype,
                                inputs[i].shape, inputs[i].bytes});
    std::vector<const NpyArray *> matched;
    for (const NpyArray &a : arrays)
      matched.push_back(&a);
    LocalRunOptions options;
    options.threadsPerRank = 1;
    options.timeout = std::chrono::duration<double>(timeoutSeconds);
    return runLocalRanks(*artifact, matched, options, statuses);
  }

  /// The error of readArtifact after write(), or "".
  std::string readError() {
    write();
    auto artifact = readArtifact(dir.path);
    return artifact.ok() ? "" : artifact.message();
  }

  TempDir dir;
  Manifest manifest;
  std::vector<Plan> plans;
  std::string weights;

private:
  static void spec(weft::artifact::TensorSpec *s, const std::string &name,
                   DType dtype, const Shape &shape) {
    s->set_name(name);
    s->set_dtype(dtype);
    for (int64_t d : shape)
      s->add_shape(d);
  }
};

std::vector<float> outputFloats(const NpyArray &a) {
  return floats(HostTensor{a.dtype, a.shape, a.data});
}

HostTensor scalarF32(float v) { return f32({1}, {v}); }

/// A row-parallel linear split in two: y = x @ W with x [2, 4] and W
/// [4, 3]; rank r takes x[:, 2r:2r+2] and W's rows [2r, 2r+2) (a slice of
/// the shared weight file), multiplies, and the ranks all-reduce.
void rowParallelLinear(MultiRankArtifact &a) {
  a.manifest.set_tp(2);
  a.input("x", DType::F32, {2, 4});
  a.output("y", DType::F32, {2, 3});
  HostTensor w = f32({4, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  for (int64_t r = 0; r < 2; ++r) {
    PlanBuilder p = a.rank(r);
    uint32_t x = p.input("x", DType::F32, {2, 4});
    uint32_t wr =
        p.weight(a.weight(r, "W", w, {2 * r, 0}, {2, 3}), DType::F32, {2, 3});
    uint32_t xs = p.arena(DType::F32, {2, 2});
    uint32_t partial = p.arena(DType::F32, {2, 3});
    uint32_t y = p.output("y", DType::F32, {2, 3});
    p.step(
        Step::SLICE, {x}, {xs}, "slice", {},
        {{"starts", {0, 2 * r}}, {"ends", {2, 2 * r + 2}}, {"steps", {1, 1}}});
    p.step(Step::GEMM, {xs, wr}, {partial}, "matmul");
    p.allReduce(partial, y, {0, 1});
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Whole artifacts over the in-process transport
//===----------------------------------------------------------------------===//

TEST(MultiRank, RowParallelMatmulAllReduces) {
  MultiRankArtifact a(2);
  rowParallelLinear(a);
  std::vector<Status> statuses;
  auto out = a.run({f32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})}, &statuses);
  ASSERT_TRUE(out.ok()) << out.message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].name, "y");
  EXPECT_EQ((*out)[0].shape, (Shape{2, 3}));
  // [1 2 3 4] @ W = [60 70 80]; [5 6 7 8] @ W = [132 158 184].
  EXPECT_EQ(outputFloats((*out)[0]),
            (std::vector<float>{60, 70, 80, 132, 158, 184}));
  ASSERT_EQ(statuses.size(), 2u);
  for (const Status &s : statuses)
    EXPECT_TRUE(s.ok()) << s.message();
}

TEST(MultiRank, AllGathersAlongAnyAxisInGroupOrder) {
  // Four ranks: rank r contributes x * (r + 1); gathered along axis 1
  // (interleaved per row) and along axis 0 (one block per rank). Only rank
  // 0 lists the outputs.
  MultiRankArtifact a(4);
  a.input("x", DType::F32, {2, 2});
  a.output("cols", DType::F32, {2, 8});
  a.output("rows", DType::F32, {8, 2});
  for (uint32_t r = 0; r < 4; ++r) {
    PlanBuilder p = a.rank(r);
    uint32_t x = p.input("x", DType::F32, {2, 2});
    uint32_t c = p.constant(scalarF32(r + 1.0f));
    uint32_t h = p.arena(DType::F32, {2, 2});
    uint32_t cols = r == 0 ? p.output("cols", DType::F32, {2, 8})
                           : p.arena(DType::F32, {2, 8});
    uint32_t rows = r == 0 ? p.output("rows", DType::F32, {8, 2})
                           : p.arena(DType::F32, {8, 2});
    p.binary(Instr::MUL, x, c, h);
    p.allGather(h, cols, 1, {0, 1, 2, 3});
    p.allGather(h, rows, -2, {0, 1, 2, 3});
  }
  auto out = a.run({f32({2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.message();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ(outputFloats((*out)[0]),
            (std::vector<float>{1, 2, 2, 4, 3, 6, 4, 8, //
                                3, 4, 6, 8, 9, 12, 12, 16}));
  EXPECT_EQ(outputFloats((*out)[1]),
            (std::vector<float>{1, 2, 3, 4, 2, 4, 6, 8, //
                                3, 6, 9, 12, 4, 8, 12, 16}));
}

TEST(MultiRank, GroupsOfRanksStayApart) {
  // Rank r computes x * (r + 1), all-reduces within the group {0, 1} (3x)
  // or {2, 3} (7x), then all-gathers along axis 0 within {0, 2} or {1, 3}.
  MultiRankArtifact a(4);
  a.input("x", DType::F32, {1, 2});
  a.output("y", DType::F32, {2, 2});
  for (int64_t r = 0; r < 4; ++r) {
    PlanBuilder p = a.rank(r);
    uint32_t x = p.input("x", DType::F32, {1, 2});
    uint32_t c = p.constant(scalarF32(r + 1.0f));
    uint32_t h = p.arena(DType::F32, {1, 2});
    uint32_t sum = p.arena(DType::F32, {1, 2});
    uint32_t y = p.output("y", DType::F32, {2, 2});
    int64_t tp = r % 2, dp = r / 2;
    p.binary(Instr::MUL, x, c, h);
    p.allReduce(h, sum, {2 * dp, 2 * dp + 1});
    p.allGather(sum, y, 0, {tp, tp + 2});
  }
  auto out = a.run({f32({1, 2}, {1, 10})});
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(outputFloats((*out)[0]), (std::vector<float>{3, 30, 7, 70}));
}

TEST(MultiRank, TwoStagePipelineSendsAndReceives) {
  // Stage 0 (rank 0) takes x and sends h = x + 1; stage 1 (rank 1) takes
  // no graph input, receives h and gives y = h * 2: the outputs are rank
  // 1's, the first rank whose plan lists them.
  MultiRankArtifact a(2);
  a.manifest.set_pp(2);
  a.input("x", DType::F32, {2, 3});
  a.output("y", DType::F32, {2, 3});
  {
    PlanBuilder p = a.rank(0);
    uint32_t x = p.input("x", DType::F32, {2, 3});
    uint32_t one = p.constant(scalarF32(1));
    uint32_t h = p.arena(DType::F32, {2, 3});
    p.binary(Instr::ADD, x, one, h);
    p.step(Step::SEND, {h}, {}, "send", {{"peer", 1}, {"tag", 7}});
  }
  {
    PlanBuilder p = a.rank(1);
    uint32_t h = p.arena(DType::F32, {2, 3});
    uint32_t two = p.constant(scalarF32(2));
    uint32_t y = p.output("y", DType::F32, {2, 3});
    p.step(Step::RECV, {}, {h}, "recv", {{"peer", 0}, {"tag", 7}});
    p.binary(Instr::MUL, h, two, y);
  }
  auto out = a.run({f32({2, 3}, {0, 1, 2, 3, 4, 5})});
  ASSERT_TRUE(out.ok()) << out.message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ(outputFloats((*out)[0]), (std::vector<float>{2, 4, 6, 8, 10, 12}));
}

TEST(MultiRank, VocabParallelEmbeddingSumsShards) {
  // The table [6, 2] is split by rows: rank r holds ids [3r, 3r + 3)
  // (vocab_start 3r) and gives zero rows for the others; the all-reduce
  // assembles the lookup.
  MultiRankArtifact a(2);
  a.manifest.set_tp(2);
  a.input("ids", DType::I64, {4});
  a.output("e", DType::F32, {4, 2});
  HostTensor table = f32({6, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  for (int64_t r = 0; r < 2; ++r) {
    PlanBuilder p = a.rank(r);
    uint32_t ids = p.input("ids", DType::I64, {4});
    uint32_t t = p.weight(a.weight(r, "table", table, {3 * r, 0}, {3, 2}),
                          DType::F32, {3, 2});
    uint32_t partial = p.arena(DType::F32, {4, 2});
    uint32_t e = p.output("e", DType::F32, {4, 2});
    p.step(Step::EMBEDDING, {t, ids}, {partial}, "embed",
           {{"vocab_start", 3 * r}});
    p.allReduce(partial, e, {0, 1});
  }
  auto out = a.run({i64({4}, {0, 5, 3, 2})});
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(outputFloats((*out)[0]),
            (std::vector<float>{0, 1, 10, 11, 6, 7, 4, 5}));
}

TEST(MultiRank, AFailingRankEndsEveryRank) {
  // Rank 1's first step fails at run time (an id out of range); rank 0
  // waits for it in the all-reduce and must end at once (well within the
  // timeout) with an error naming rank 1.
  MultiRankArtifact a(2);
  a.input("ids", DType::I64, {1});
  a.input("x", DType::F32, {1, 2});
  a.output("y", DType::F32, {1, 2});
  {
    PlanBuilder p = a.rank(0);
    p.input("ids", DType::I64, {1});
    uint32_t x = p.input("x", DType::F32, {1, 2});
    uint32_t y = p.output("y", DType::F32, {1, 2});
    p.allReduce(x, y, {0, 1});
  }
  {
    PlanBuilder p = a.rank(1);
    uint32_t ids = p.input("ids", DType::I64, {1});
    p.input("x", DType::F32, {1, 2});
    uint32_t table = p.constant(f32({3, 2}, {0, 1, 2, 3, 4, 5}));
    uint32_t e = p.arena(DType::F32, {1, 2});
    uint32_t y = p.output("y", DType::F32, {1, 2});
    p.step(Step::EMBEDDING, {table, ids}, {e}, "embed");
    p.allReduce(e, y, {0, 1});
  }
  std::vector<Status> statuses;
  auto start = Clock::now();
  auto out = a.run({i64({1}, {7}), f32({1, 2}, {1, 2})}, &statuses,
                   /*timeoutSeconds=*/30);
  EXPECT_LT(secondsSince(start), 10);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(contains(out.message(),
                       "rank 1: step 0 'embed' (EMBEDDING): embedding id: "
                       "index 7"))
      << out.message();
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_TRUE(contains(statuses[0].message(),
                       "step 0 'all_reduce' (COLLECTIVE): rank 1 failed: "
                       "step 0 'embed'"))
      << statuses[0].message();
  EXPECT_FALSE(statuses[1].ok());
}

TEST(MultiRank, AFailedLoadEndsEveryRank) {
  // Rank 1's weight file range is past the end: rank 0 (already waiting to
  // agree on the output rank) ends with rank 1's error.
  MultiRankArtifact a(2);
  rowParallelLinear(a);
  a.plans[1].mutable_weights(0)->set_offset(1000);
  std::vector<Status> statuses;
  auto out = a.run({f32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})}, &statuses);
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(contains(out.message(), "rank 1: weight 'W': ")) << out.message();
  EXPECT_TRUE(contains(out.message(), "past the end of the file"))
      << out.message();
  EXPECT_TRUE(contains(statuses[0].message(), "rank 1 failed: weight 'W'"))
      << statuses[0].message();
}

TEST(MultiRank, MismatchedPlansFailAtOnce) {
  // Rank 0 all-reduces, rank 1 all-gathers the same group: the mismatch is
  // reported instead of a hang.
  MultiRankArtifact a(2);
  a.input("x", DType::F32, {2});
  a.output("y", DType::F32, {2});
  {
    PlanBuilder p = a.rank(0);
    uint32_t x = p.input("x", DType::F32, {2});
    uint32_t y = p.output("y", DType::F32, {2});
    p.allReduce(x, y, {0, 1});
  }
  {
    PlanBuilder p = a.rank(1);
    uint32_t x = p.input("x", DType::F32, {2});
    uint32_t g = p.arena(DType::F32, {4});
    uint32_t y = p.output("y", DType::F32, {2});
    p.allGather(x, g, 0, {0, 1});
    p.binary(Instr::ADD, x, x, y); // its output written, as plans must
  }
  auto start = Clock::now();
  auto out = a.run({f32({2}, {1, 2})});
  EXPECT_LT(secondsSince(start), 10);
  ASSERT_FALSE(out.ok());
  // Call 0 of the group [0, 1] (the whole world) agreed on the output
  // rank; call 1 differs.
  EXPECT_TRUE(contains(out.message(), "over ranks [0, 1] (call 1 of the "
                                      "group): rank "))
      << out.message();
}

TEST(MultiRank, RunsASingleRankArtifact) {
  MultiRankArtifact a(1);
  a.input("x", DType::F32, {2});
  a.output("y", DType::F32, {2});
  PlanBuilder p = a.rank(0);
  uint32_t x = p.input("x", DType::F32, {2});
  uint32_t y = p.output("y", DType::F32, {2});
  p.allReduce(x, y, {0}); // a group of one: a copy
  auto out = a.run({f32({2}, {3, 4})});
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(outputFloats((*out)[0]), (std::vector<float>{3, 4}));
}

//===----------------------------------------------------------------------===//
// The in-process transport
//===----------------------------------------------------------------------===//

namespace {

/// Runs fn(rank, transport) on one thread per rank; their statuses.
std::vector<Status>
onRanks(comm::InProcessWorld &world,
        const std::function<Status(uint32_t, comm::Transport &)> &fn) {
  std::vector<Status> statuses(world.worldSize());
  std::vector<std::unique_ptr<comm::Transport>> transports;
  for (uint32_t r = 0; r < world.worldSize(); ++r)
    transports.push_back(world.transport(r));
  std::vector<std::thread> threads;
  for (uint32_t r = 0; r < world.worldSize(); ++r)
    threads.emplace_back([&, r] {
      statuses[r] = fn(r, *transports[r]);
      if (statuses[r].ok())
        world.finish(r);
      else
        world.fail(r, statuses[r].message());
    });
  for (std::thread &t : threads)
    t.join();
  return statuses;
}

template <typename T> std::vector<std::byte> bytesOf(std::vector<T> v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

} // namespace

TEST(InProcessTransport, SumsInRankOrderWhateverTheGroupOrder) {
  // (1e8 + -1e8) + 1 = 1 in f32, but 1e8 + (-1e8 + 1) = 0: rank order
  // (0, 1, 2) must be used although the group lists [2, 0, 1].
  comm::InProcessWorld world(3);
  std::vector<float> values = {1e8f, -1e8f, 1}, got(3, -1);
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    std::byte *out = reinterpret_cast<std::byte *>(&got[r]);
    return t.allReduceSum({2, 0, 1}, DType::F32,
                          reinterpret_cast<const std::byte *>(&values[r]), out,
                          1);
  });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(got, (std::vector<float>{1, 1, 1}));
}

TEST(InProcessTransport, SumsEveryDType) {
  comm::InProcessWorld world(3);
  std::vector<std::vector<std::byte>> out(3);
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    // bf16: 1 + 2^-8 + 2^-8 in f32, rounded once: 1 + 2^-7 (pairwise
    // rounding would give 1).
    HostTensor b = bf16({1}, {r == 0 ? 1.0f : 0x1p-8f});
    HostTensor h = f16({2}, {r + 0.5f, -1});
    HostTensor i = i32({2}, {r == 0 ? INT32_MAX : 1, -int32_t(r)});
    HostTensor flags = boolean({2}, {r == 1, 0});
    for (const HostTensor *x : {&b, &h, &i, &flags}) {
      std::vector<std::byte> sum(x->bytes.size());
      if (Status s = t.allReduceSum({0, 1, 2}, x->dtype, x->bytes.data(),
                                    sum.data(), numElements(x->shape));
          !s.ok())
        return s;
      out[r].insert(out[r].end(), sum.begin(), sum.end());
    }
    return okStatus();
  });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  for (uint32_t r = 0; r < 3; ++r) {
    ASSERT_EQ(out[r].size(), 2u + 4u + 8u + 2u);
    EXPECT_EQ(out[r], out[0]) << "rank " << r;
  }
  const std::vector<std::byte> &o = out[0];
  auto part = [&](size_t begin, size_t size) {
    return std::vector<std::byte>(o.begin() + begin, o.begin() + begin + size);
  };
  EXPECT_EQ(floats(HostTensor{DType::BF16, {1}, part(0, 2)}),
            (std::vector<float>{1 + 0x1p-7f}));
  EXPECT_EQ(floats(HostTensor{DType::F16, {2}, part(2, 4)}),
            (std::vector<float>{4.5f, -3}));
  EXPECT_EQ(ints(HostTensor{DType::I32, {2}, part(6, 8)}),
            (std::vector<int64_t>{INT32_MIN + 1, -3}));
  EXPECT_EQ(ints(HostTensor{DType::BOOL, {2}, part(14, 2)}),
            (std::vector<int64_t>{1, 0}));
}

TEST(InProcessTransport, GathersAndSendsBytes) {
  comm::InProcessWorld world(2);
  std::vector<std::vector<std::byte>> gathered(2), received(2);
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    std::vector<std::byte> mine = bytesOf<int16_t>({int16_t(r), 7});
    gathered[r].resize(8);
    if (Status s = t.allGather({0, 1}, mine.data(), 4, gathered[r].data());
        !s.ok())
      return s;
    if (r == 0) {
      // Two messages with one tag arrive in order; sends never wait.
      for (int16_t v : {5, 6}) {
        std::vector<std::byte> m = bytesOf<int16_t>({v});
        if (Status s = t.send(1, 3, m.data(), 2); !s.ok())
          return s;
      }
      return okStatus();
    }
    received[r].resize(4);
    if (Status s = t.recv(0, 3, received[r].data(), 2); !s.ok())
      return s;
    return t.recv(0, 3, received[r].data() + 2, 2);
  });
  for (const Status &s : statuses)
    ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(gathered[0], bytesOf<int16_t>({0, 7, 1, 7}));
  EXPECT_EQ(gathered[1], gathered[0]);
  EXPECT_EQ(received[1], bytesOf<int16_t>({5, 6}));
}

TEST(InProcessTransport, RefusesAMessageOfTheWrongSize) {
  comm::InProcessWorld world(2);
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    std::vector<std::byte> buf(8);
    return r == 0 ? t.send(1, 0, buf.data(), 8) : t.recv(0, 0, buf.data(), 4);
  });
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_EQ(statuses[1].message(),
            "recv from rank 0 (tag 0): the message holds 8 bytes, expected 4");
}

TEST(InProcessTransport, TimesOutNamingTheMissingRank) {
  comm::InProcessWorld world(2, std::chrono::milliseconds(200));
  auto start = Clock::now();
  double rank0Seconds = 0;
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    float in = 1, out = 0;
    if (r == 1) // busy (not waiting on the transport) past the timeout
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    Status s = t.allReduceSum({0, 1}, DType::F32,
                              reinterpret_cast<const std::byte *>(&in),
                              reinterpret_cast<std::byte *>(&out), 1);
    if (r == 0)
      rank0Seconds = secondsSince(start);
    return s;
  });
  EXPECT_EQ(statuses[0].message(),
            "timed out after 0.2 s in all-reduce over ranks [0, 1], waiting "
            "for rank 1");
  EXPECT_LT(rank0Seconds, 1.4);
  EXPECT_EQ(statuses[1].message(),
            "rank 0 failed: timed out after 0.2 s in all-reduce over ranks "
            "[0, 1], waiting for rank 1");
}

TEST(InProcessTransport, ReportsADeadlockAtOnce) {
  // Both ranks receive first: nothing can go on. Reported without waiting
  // for the (long) timeout.
  comm::InProcessWorld world(2, std::chrono::seconds(60));
  auto start = Clock::now();
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    std::byte b[4];
    return t.recv(1 - r, 0, b, 4);
  });
  EXPECT_LT(secondsSince(start), 10);
  std::string deadlock =
      "deadlock: no rank can go on (rank 0 is in recv from rank 1 (tag 0), "
      "waiting for the message; rank 1 is in recv from rank 0 (tag 0), "
      "waiting for the message); the ranks' plans do not match";
  std::string first = statuses[0].message(), second = statuses[1].message();
  EXPECT_TRUE((first == deadlock && second == "rank 0 failed: " + deadlock) ||
              (second == deadlock && first == "rank 1 failed: " + deadlock))
      << first << "\n"
      << second;
}

TEST(InProcessTransport, AFinishedPeerIsADeadlock) {
  comm::InProcessWorld world(2, std::chrono::seconds(60));
  auto statuses = onRanks(world, [&](uint32_t r, comm::Transport &t) {
    if (r == 0)
      return okStatus(); // finishes without sending
    std::byte b[4];
    // Let rank 0 finish first.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return t.recv(0, 0, b, 4);
  });
  EXPECT_TRUE(statuses[0].ok());
  EXPECT_TRUE(contains(statuses[1].message(), "rank 0 has finished; rank 1 "
                                              "is in recv from rank 0"))
      << statuses[1].message();
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

TEST(CollectiveKernels, CheckShapesAndNeedATransport) {
  Step gather = makeStep(Step::COLLECTIVE, {{"op", 1}, {"axis", 1}}, {},
                         {{"group", {0, 1}}});
  HostTensor x = f32({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(runError(gather, {x}, DType::F32, {2, 3}),
            "output has shape [2, 3], expected [2, 4]");
  EXPECT_EQ(runError(gather, {x}, DType::F32, {2, 4}),
            "COLLECTIVE needs other ranks, and this rank runs alone (no "
            "transport)");
  Step reduce =
      makeStep(Step::COLLECTIVE, {{"op", 2}}, {}, {{"group", {0, 1}}});
  EXPECT_EQ(runError(reduce, {x}, DType::F32, {2, 2}),
            "op 2 is not 0 (all-reduce sum) or 1 (all-gather)");
  Step repeated =
      makeStep(Step::COLLECTIVE, {{"op", 0}}, {}, {{"group", {1, 1}}});
  EXPECT_EQ(runError(repeated, {x}, DType::F32, {2, 2}),
            "group [1, 1] holds a negative or repeated rank");
  auto send = runKernel(makeStep(Step::SEND, {{"peer", -1}}), {x}, {});
  ASSERT_FALSE(send.ok());
  EXPECT_EQ(send.message(), "peer -1 is not another rank of the world");
}

TEST(CollectiveKernels, EmbeddingShardGivesZeroRowsOutside) {
  // Rows are ids 2 and 3; ids 0, 1, 4 and a far negative one give zeros.
  Step embed = makeStep(Step::EMBEDDING, {{"vocab_start", 2}});
  HostTensor table = f32({2, 2}, {20, 21, 30, 31});
  HostTensor ids = i64({5}, {3, 0, 2, 4, INT64_MIN});
  EXPECT_EQ(floats(runOne(embed, {table, ids}, DType::F32, {5, 2})),
            (std::vector<float>{30, 31, 0, 0, 20, 21, 0, 0, 0, 0}));
  Step negative = makeStep(Step::EMBEDDING, {{"vocab_start", -1}});
  EXPECT_EQ(runError(negative, {table, ids}, DType::F32, {5, 2}),
            "vocab_start -1 is negative");
}

//===----------------------------------------------------------------------===//
// Reader checks of multi-rank artifacts
//===----------------------------------------------------------------------===//

TEST(MultiRankReader, ReadsOnlyTheRankItIsAskedFor) {
  MultiRankArtifact a(2);
  rowParallelLinear(a);
  a.write();
  // Rank 1's plan is corrupt: rank 0 alone still reads.
  writeFile(a.dir.file("rank1.plan.pb"), "junk");
  auto artifact = readManifest(a.dir.path);
  ASSERT_TRUE(artifact.ok()) << artifact.message();
  EXPECT_TRUE(artifact->ranks.empty());
  auto rank0 = readRankPlan(*artifact, 0);
  ASSERT_TRUE(rank0.ok()) << rank0.message();
  EXPECT_EQ(rank0->plan.rank(), 0u);
  auto rank1 = readRankPlan(*artifact, 1);
  ASSERT_FALSE(rank1.ok());
  EXPECT_TRUE(contains(rank1.message(), "rank1.plan.pb: sha256 mismatch"))
      << rank1.message();
  EXPECT_TRUE(contains(readRankPlan(*artifact, 2).message(),
                       "rank 2 is not in the artifact (world_size 2)"));
}

TEST(MultiRankReader, RefusesBadRankEntriesAndLayouts) {
  {
    MultiRankArtifact a(2);
    rowParallelLinear(a);
    a.write();
    a.manifest.mutable_ranks(1)->set_rank(0);
    writeFile(a.dir.file("manifest.pb"), a.manifest.SerializeAsString());
    auto artifact = readArtifact(a.dir.path);
    ASSERT_FALSE(artifact.ok());
    EXPECT_TRUE(contains(artifact.message(),
                         "manifest.pb: ranks[1]: rank 0 is listed twice"))
        << artifact.message();
    a.manifest.mutable_ranks(1)->set_rank(2);
    writeFile(a.dir.file("manifest.pb"), a.manifest.SerializeAsString());
    EXPECT_TRUE(contains(readArtifact(a.dir.path).message(),
                         "ranks[1]: rank 2 is outside world_size 2"));
  }
  {
    // Listed out of order: still indexed by rank.
    MultiRankArtifact a(2);
    rowParallelLinear(a);
    a.write();
    a.manifest.mutable_ranks()->SwapElements(0, 1);
    writeFile(a.dir.file("manifest.pb"), a.manifest.SerializeAsString());
    auto artifact = readArtifact(a.dir.path);
    ASSERT_TRUE(artifact.ok()) << artifact.message();
    EXPECT_EQ(artifact->ranks[1].plan.rank(), 1u);
  }
  MultiRankArtifact a(2);
  rowParallelLinear(a);
  a.manifest.set_dp(2);
  EXPECT_TRUE(contains(a.readError(), "tp * pp * dp = 2 * 1 * 2 = 4 differs "
                                      "from world_size 2"))
      << a.readError();
  a.manifest.set_dp(1);
  EXPECT_EQ(a.readError(), "");
}

TEST(MultiRankReader, RefusesBadGroupsAndPeers) {
  auto collectiveError = [](auto edit) {
    MultiRankArtifact a(2);
    rowParallelLinear(a);
    edit(a.plans[1].mutable_steps(2));
    return a.readError();
  };
  auto setGroup = [](Step *s, std::vector<int64_t> g) {
    s->mutable_collective()->clear_group();
    for (int64_t r : g)
      s->mutable_collective()->add_group(r);
  };
  std::string err = collectiveError([&](Step *s) { setGroup(s, {0, 2}); });
  EXPECT_TRUE(contains(err, "rank1.plan.pb: steps[2] 'all_reduce': group "
                            "[0, 2] holds rank 2, outside world_size 2"))
      << err;
  err = collectiveError([&](Step *s) { setGroup(s, {0}); });
  EXPECT_TRUE(contains(err, "group [0] does not hold the plan's own rank 1"))
      << err;
  err = collectiveError([&](Step *s) { setGroup(s, {1, 1}); });
  EXPECT_TRUE(contains(err, "group [1, 1] holds rank 1 twice")) << err;
  err =
      collectiveError([&](Step *s) { s->mutable_collective()->clear_group(); });
  EXPECT_TRUE(contains(err, "COLLECTIVE has an empty group")) << err;
  err = collectiveError([&](Step *s) { s->mutable_collective()->set_op(2); });
  EXPECT_TRUE(contains(err, "op 2 is not 0 (all-reduce sum) or 1")) << err;
  // A COLLECTIVE without its CollectiveAttrs, or with another kind's.
  err = collectiveError([&](Step *s) { s->clear_attrs(); });
  EXPECT_TRUE(contains(err, "steps[2] 'all_reduce': COLLECTIVE step "
                            "'all_reduce' carries no CollectiveAttrs"))
      << err;
  err = collectiveError([&](Step *s) { s->mutable_send_recv(); });
  EXPECT_TRUE(contains(err, "COLLECTIVE step 'all_reduce' carries "
                            "SendRecvAttrs, expected CollectiveAttrs"))
      << err;

  MultiRankArtifact p(2);
  p.input("x", DType::F32, {2});
  p.output("y", DType::F32, {2});
  {
    PlanBuilder b = p.rank(0);
    uint32_t x = b.input("x", DType::F32, {2});
    b.step(Step::SEND, {x}, {}, "send", {{"peer", 2}});
  }
  {
    PlanBuilder b = p.rank(1);
    uint32_t y = b.output("y", DType::F32, {2});
    b.step(Step::RECV, {}, {y}, "recv", {{"peer", 1}});
  }
  err = p.readError();
  EXPECT_TRUE(contains(err, "rank0.plan.pb: steps[0] 'send': peer 2 is "
                            "outside world_size 2"))
      << err;
  p.plans[0].mutable_steps(0)->mutable_send_recv()->set_peer(1);
  err = p.readError();
  EXPECT_TRUE(contains(err, "rank1.plan.pb: steps[0] 'recv': peer 1 is the "
                            "plan's own rank"))
      << err;
  p.plans[1].mutable_steps(0)->mutable_send_recv()->set_peer(0);
  p.plans[1].mutable_steps(0)->mutable_send_recv()->set_tag(-4);
  EXPECT_TRUE(contains(p.readError(), "tag -4 is negative"));
  p.plans[1].mutable_steps(0)->mutable_send_recv()->set_tag(4);
  EXPECT_EQ(p.readError(), "");
}

TEST(MultiRankReader, RanksMayTakeSomeInputsAndNoOutputs) {
  // With several ranks, a plan lists a subset of the graph inputs (in
  // order) and all of the outputs or none; with one rank, all of both.
  MultiRankArtifact a(2);
  a.input("a", DType::F32, {1});
  a.input("b", DType::F32, {1});
  a.output("y", DType::F32, {1});
  {
    PlanBuilder p = a.rank(0);
    p.input("b", DType::F32, {1});
  }
  {
    PlanBuilder p = a.rank(1);
    uint32_t x = p.input("a", DType::F32, {1});
    uint32_t y = p.output("y", DType::F32, {1});
    p.step(Step::COPY, {x}, {y}, "copy");
  }
  EXPECT_EQ(a.readError(), "");
  PlanBuilder(a.plans[0]).input("a", DType::F32, {1});
  std::string err = a.readError();
  EXPECT_TRUE(contains(err, "rank0.plan.pb: inputs[1]: plan buffer 'a' is "
                            "not among the manifest's inputs (or is out of "
                            "order)"))
      << err;
  MultiRankArtifact one(1);
  one.input("a", DType::F32, {1});
  one.output("y", DType::F32, {1});
  PlanBuilder(one.plans[0]).input("a", DType::F32, {1});
  EXPECT_TRUE(contains(one.readError(), "plan has 0 outputs, the manifest 1"));
}

//===----------------------------------------------------------------------===//
// Pipeline and data parallelism: the batch cut into chunks
//===----------------------------------------------------------------------===//

namespace {

/// x [rows, 3] with x[i][j] = 3 * i + j - 5.
HostTensor rowsF32(int64_t rows) {
  std::vector<float> v;
  for (int64_t i = 0; i < rows * 3; ++i)
    v.push_back(static_cast<float>(i) - 5);
  return f32({rows, 3}, v);
}

/// Rank `r` of a two-stage pipeline on chunks [2, 3]: stage 0 sends x * 2
/// to `next`; stage 1 receives it from `prev` and outputs it + 1.
void pipelineStage(MultiRankArtifact &a, uint32_t r, bool first,
                   uint32_t peer) {
  PlanBuilder p = a.rank(r);
  if (first) {
    uint32_t x = p.input("x", DType::F32, {2, 3});
    uint32_t h = p.arena(DType::F32, {2, 3});
    p.binary(Instr::MUL, x, p.constant(scalarF32(2)), h);
    p.step(Step::SEND, {h}, {}, "send", {{"peer", peer}, {"tag", 3}});
    return;
  }
  uint32_t h = p.arena(DType::F32, {2, 3});
  uint32_t y = p.output("y", DType::F32, {2, 3});
  p.step(Step::RECV, {}, {h}, "recv", {{"peer", peer}, {"tag", 3}});
  p.binary(Instr::ADD, h, p.constant(scalarF32(1)), y);
}

std::vector<float> timesTwoPlusOne(const HostTensor &x) {
  std::vector<float> v = floats(x);
  for (float &f : v)
    f = f * 2 + 1;
  return v;
}

} // namespace

TEST(MultiRankChunks, PipelineRunsEachMicrobatch) {
  // pp 2 x microbatches 2: x [4, 3] whole, [2, 3] per chunk; rank 0 sends
  // each chunk's x * 2, rank 1 gives + 1; the chunks' outputs are put back
  // together in order.
  MultiRankArtifact a(2);
  a.manifest.set_tp(1);
  a.manifest.set_pp(2);
  a.manifest.set_dp(1);
  a.manifest.set_microbatches(2);
  a.input("x", DType::F32, {4, 3});
  a.output("y", DType::F32, {4, 3});
  pipelineStage(a, 0, true, 1);
  pipelineStage(a, 1, false, 0);
  HostTensor x = rowsF32(4);
  auto out = a.run({x});
  ASSERT_TRUE(out.ok()) << out.message();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].name, "y");
  EXPECT_EQ((*out)[0].shape, (Shape{4, 3}));
  EXPECT_EQ(outputFloats((*out)[0]), timesTwoPlusOne(x));
}

TEST(MultiRankChunks, DataParallelReplicasTakeTheirHalves) {
  // dp 2: each replica (one rank) computes x + 1 on its half of x [4, 3],
  // in one chunk or in two microbatches of one row.
  for (uint32_t micro : {1u, 2u}) {
    int64_t rows = 2 / micro;
    MultiRankArtifact a(2);
    a.manifest.set_dp(2);
    a.manifest.set_microbatches(micro);
    a.input("x", DType::F32, {4, 3});
    a.output("y", DType::F32, {4, 3});
    for (uint32_t r = 0; r < 2; ++r) {
      PlanBuilder p = a.rank(r);
      uint32_t x = p.input("x", DType::F32, {rows, 3});
      uint32_t y = p.output("y", DType::F32, {rows, 3});
      p.binary(Instr::ADD, x, p.constant(scalarF32(1)), y);
    }
    HostTensor x = rowsF32(4);
    auto out = a.run({x});
    ASSERT_TRUE(out.ok()) << out.message();
    std::vector<float> want = floats(x);
    for (float &f : want)
      f += 1;
    EXPECT_EQ((*out)[0].shape, (Shape{4, 3}));
    EXPECT_EQ(outputFloats((*out)[0]), want) << "microbatches " << micro;
  }
}

TEST(MultiRankChunks, TensorParallelStagesOfEveryReplica) {
  // dp 2 x pp 2 x tp 2 (8 ranks), microbatches 2: x [4, 3] whole, [1, 3]
  // per chunk. In each replica, stage 0's ranks t compute x * (t + 1) and
  // all-reduce (3x) within their stage, then send to the same tp index of
  // stage 1; stage 1's ranks add t, all-reduce (6x + 1) and output; only
  // the replica's tp index 0 yields outputs, though both list them.
  MultiRankArtifact a(8);
  a.manifest.set_tp(2);
  a.manifest.set_pp(2);
  a.manifest.set_dp(2);
  a.manifest.set_microbatches(2);
  a.input("x", DType::F32, {4, 3});
  a.input("unused", DType::F32, {4});
  a.output("y", DType::F32, {4, 3});
  for (uint32_t r = 0; r < 8; ++r) {
    uint32_t t = r % 2, stage = r / 2 % 2, base = r / 4 * 4;
    Shape group = {base + 2 * stage, base + 2 * stage + 1};
    PlanBuilder p = a.rank(r);
    uint32_t h = p.arena(DType::F32, {1, 3});
    uint32_t sum = p.arena(DType::F32, {1, 3});
    if (stage == 0) {
      uint32_t x = p.input("x", DType::F32, {1, 3});
      p.binary(Instr::MUL, x, p.constant(scalarF32(t + 1.0f)), h);
      p.allReduce(h, sum, group);
      p.step(Step::SEND, {sum}, {}, "send", {{"peer", r + 2}, {"tag", 0}});
    } else {
      uint32_t y = p.output("y", DType::F32, {1, 3});
      p.step(Step::RECV, {}, {h}, "recv", {{"peer", r - 2}, {"tag", 0}});
      p.binary(Instr::ADD, h, p.constant(scalarF32(t)), sum);
      p.allReduce(sum, y, group);
    }
  }
  HostTensor x = rowsF32(4);
  auto out = a.run({x, f32({4}, {0, 0, 0, 0})});
  ASSERT_TRUE(out.ok()) << out.message();
  std::vector<float> want = floats(x);
  for (float &f : want)
    f = 6 * f + 1;
  EXPECT_EQ((*out)[0].shape, (Shape{4, 3}));
  EXPECT_EQ(outputFloats((*out)[0]), want);
}

TEST(MultiRankChunks, TensorParallelPipelineOfFourRanks) {
  // tp 2 x pp 2, microbatches 2: stage 0 (ranks 0, 1) all-reduces x *
  // (t + 1) within {0, 1} and sends 0 -> 2, 1 -> 3; stage 1 all-reduces
  // within {2, 3} (2 * 3x) and adds 1.
  MultiRankArtifact a(4);
  a.manifest.set_tp(2);
  a.manifest.set_pp(2);
  a.manifest.set_microbatches(2);
  a.input("x", DType::F32, {4, 3});
  a.output("y", DType::F32, {4, 3});
  for (uint32_t r = 0; r < 4; ++r) {
    uint32_t t = r % 2;
    PlanBuilder p = a.rank(r);
    uint32_t h = p.arena(DType::F32, {2, 3});
    uint32_t sum = p.arena(DType::F32, {2, 3});
    if (r < 2) {
      uint32_t x = p.input("x", DType::F32, {2, 3});
      p.binary(Instr::MUL, x, p.constant(scalarF32(t + 1.0f)), h);
      p.allReduce(h, sum, {0, 1});
      p.step(Step::SEND, {sum}, {}, "send", {{"peer", r + 2}, {"tag", 1}});
    } else {
      uint32_t y = p.output("y", DType::F32, {2, 3});
      p.step(Step::RECV, {}, {h}, "recv", {{"peer", r - 2}, {"tag", 1}});
      p.allReduce(h, sum, {2, 3});
      p.binary(Instr::ADD, sum, p.constant(scalarF32(1)), y);
    }
  }
  HostTensor x = rowsF32(4);
  auto out = a.run({x});
  ASSERT_TRUE(out.ok()) << out.message();
  std::vector<float> want = floats(x);
  for (float &f : want)
    f = 6 * f + 1;
  EXPECT_EQ(outputFloats((*out)[0]), want);
}

TEST(MultiRankChunks, RefusesChunksThatDoNotFit) {
  auto pipeline = [](uint32_t micro, int64_t wholeRows) {
    auto a = std::make_unique<MultiRankArtifact>(2);
    a->manifest.set_pp(2);
    a->manifest.set_microbatches(micro);
    a->input("x", DType::F32, {wholeRows, 3});
    a->output("y", DType::F32, {wholeRows, 3});
    pipelineStage(*a, 0, true, 1);
    pipelineStage(*a, 1, false, 0);
    return a;
  };
  std::string err = pipeline(2, 6)->readError();
  EXPECT_TRUE(contains(err, "plan buffer 'x' f32 [2, 3] differs from the "
                            "manifest's 'x' f32 [6, 3] cut into dp 1 x "
                            "microbatches 2 chunks of [3, 3]"))
      << err;
  err = pipeline(4, 6)->readError();
  EXPECT_TRUE(contains(err, "manifest.pb: input 'x' [6, 3]: dim 0 cannot be "
                            "cut into dp 1 x microbatches 4 = 4 equal chunks"))
      << err;
  // Outputs too.
  auto a = pipeline(2, 4);
  a->manifest.mutable_outputs(0)->set_shape(0, 2);
  err = a->readError();
  EXPECT_TRUE(contains(err, "rank1.plan.pb: outputs[0]: plan buffer 'y' f32 "
                            "[2, 3] differs from the manifest's 'y' f32 [2, "
                            "3] cut into dp 1 x microbatches 2 chunks of [1, "
                            "3]"))
      << err;
  // The run refuses them as well (each rank reads its own plan).
  auto run = pipeline(2, 6)->run({rowsF32(6)});
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(contains(run.message(), "chunks of [3, 3]")) << run.message();
  // tp * pp * dp must be the world size.
  a = pipeline(2, 4);
  a->manifest.set_dp(2);
  err = a->readError();
  EXPECT_TRUE(contains(err, "tp * pp * dp = 1 * 2 * 2 = 4 differs from "
                            "world_size 2"))
      << err;
  // Each replica needs a rank that yields the outputs.
  MultiRankArtifact b(2);
  b.manifest.set_dp(2);
  b.input("x", DType::F32, {4, 3});
  b.output("y", DType::F32, {4, 3});
  for (uint32_t r = 0; r < 2; ++r) {
    PlanBuilder p = b.rank(r);
    uint32_t x = p.input("x", DType::F32, {2, 3});
    uint32_t y = r == 0 ? p.output("y", DType::F32, {2, 3})
                        : p.arena(DType::F32, {2, 3});
    p.binary(Instr::ADD, x, p.constant(scalarF32(1)), y);
  }
  run = b.run({rowsF32(4)});
  ASSERT_FALSE(run.ok());
  EXPECT_TRUE(contains(run.message(), "no rank of data-parallel replica 1 "
                                      "(ranks 1 to 1) lists the graph "
                                      "outputs"))
      << run.message();
}
