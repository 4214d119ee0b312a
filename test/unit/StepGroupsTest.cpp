// Which steps the CUDA backend launches as one (StepGroups.h): decided on
// the host from the steps and the bytes their buffers occupy, so these run
// without a GPU. Buffers are given addresses in a fake arena; two buffers
// at overlapping addresses are the planner's reuse of memory.
#include "runtime/backends/cuda/StepGroups.h"

#include <gtest/gtest.h>

#include <map>

namespace weft::runtime::test {
namespace {

using artifact::Instr;
using artifact::Step;
using cuda::Region;
using cuda::StepGroup;

/// An entry's steps and its buffers' places.
struct Plan {
  std::vector<Step> steps;
  std::map<uint32_t, Region> regions;
  std::vector<uint32_t> outputs;

  /// Buffer `id` at byte `offset` of the fake arena, `bytes` long.
  void place(uint32_t id, uint64_t offset, uint64_t bytes = 64) {
    regions[id] = {reinterpret_cast<const void *>(0x10000 + offset), bytes};
  }
  size_t gemm(uint32_t in, uint32_t weight, uint32_t out) {
    Step s;
    s.set_kind(Step::GEMM);
    s.set_name("gemm" + std::to_string(out));
    s.add_inputs(in);
    s.add_inputs(weight);
    s.add_outputs(out);
    s.mutable_gemm()->set_linear(true);
    s.mutable_gemm()->set_transpose_b(true);
    steps.push_back(s);
    return steps.size() - 1;
  }
  size_t other(std::vector<uint32_t> ins, std::vector<uint32_t> outs) {
    Step s;
    s.set_kind(Step::ROTARY);
    s.set_name("other");
    for (uint32_t id : ins)
      s.add_inputs(id);
    for (uint32_t id : outs)
      s.add_outputs(id);
    steps.push_back(s);
    return steps.size() - 1;
  }
  size_t norm(uint32_t in, uint32_t scale, uint32_t out) {
    Step s;
    s.set_kind(Step::RMS_NORM);
    s.set_name("rms_norm");
    s.add_inputs(in);
    s.add_inputs(scale);
    s.add_outputs(out);
    s.mutable_norm()->set_axis(-1);
    steps.push_back(s);
    return steps.size() - 1;
  }
  /// silu(gate) * up, the program PlanBuilder emits for weft.swiglu.
  size_t swiglu(uint32_t gate, uint32_t up, uint32_t out,
                artifact::DType dtype = artifact::BF16) {
    Step s;
    s.set_kind(Step::ELEMENTWISE);
    s.set_name("swiglu");
    s.add_inputs(gate);
    s.add_inputs(up);
    s.add_outputs(out);
    auto instr = [&](Instr::Op op, std::vector<uint32_t> args,
                     uint32_t index = 0) {
      Instr *i = s.add_program();
      i->set_op(op);
      i->set_index(index);
      i->set_dtype(dtype);
      for (uint32_t a : args)
        i->add_args(a);
    };
    instr(Instr::INPUT, {}, 0);
    instr(Instr::INPUT, {}, 1);
    instr(Instr::SILU, {0});
    instr(Instr::MUL, {2, 1});
    steps.push_back(s);
    return steps.size() - 1;
  }

  /// Groups, with GEMMs groupable when they read the same activations.
  std::vector<StepGroup> groups(size_t maxMembers = 3) const {
    std::vector<const Step *> list;
    for (const Step &s : steps)
      list.push_back(&s);
    auto region = [&](uint32_t id) { return regions.at(id); };
    auto groupable = [&](size_t i, size_t j) {
      return steps[i].kind() == Step::GEMM && steps[j].kind() == Step::GEMM &&
             steps[i].inputs(0) == steps[j].inputs(0);
    };
    auto normable = [&](size_t r, size_t) {
      return steps[r].kind() == Step::RMS_NORM;
    };
    return cuda::findStepGroups(list, region, groupable, normable, outputs,
                                maxMembers);
  }
};

/// x = 1; weights 2, 3, 4 (outside the arena); outputs 5, 6, 7.
Plan qkvPlan() {
  Plan p;
  p.place(1, 0);
  for (uint32_t w : {2, 3, 4})
    p.place(w, 1 << 20 | w << 10);
  p.place(5, 64);
  p.place(6, 128);
  p.place(7, 192);
  p.place(8, 256);
  p.place(9, 320);
  return p;
}

TEST(StepGroups, ProjectionsOfTheSameActivationsLaunchAsOne) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.gemm(1, 4, 7);
  p.other({5, 6}, {8});
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].members, (std::vector<size_t>{0, 1, 2}));
  EXPECT_FALSE(groups[0].swiglu);
  EXPECT_EQ(groups[0].at, 2u);
}

TEST(StepGroups, AStepReadingAnOutputStopsTheMoveOfItsProducer) {
  // q's consumer stands between k and v: q cannot wait for v.
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.other({5}, {8});
  p.gemm(1, 4, 7);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].members, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(groups[0].at, 1u);
}

TEST(StepGroups, MemoryReusedBetweenIsSeenThroughTheAddresses) {
  // The step between writes buffer 8, placed over q's output: q written
  // later would clobber it (and 8's reader).
  Plan p = qkvPlan();
  p.place(8, 64); // = q's bytes
  p.gemm(1, 2, 5);
  p.other({9}, {8});
  p.gemm(1, 3, 6);
  EXPECT_TRUE(p.groups().empty());
}

TEST(StepGroups, OverwrittenActivationsEndTheSearch) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.other({9}, {1}); // x overwritten
  p.gemm(1, 3, 6);
  EXPECT_TRUE(p.groups().empty());
}

TEST(StepGroups, AnOutputOverTheActivationsIsNotGrouped) {
  Plan p = qkvPlan();
  p.place(6, 0); // k's output over x: the planner reused x's bytes
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  EXPECT_TRUE(p.groups().empty());
}

TEST(StepGroups, GroupsHoldAtMostMaxMembers) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.gemm(1, 4, 7);
  p.place(10, 1 << 21);
  p.gemm(1, 10, 8);
  auto groups = p.groups(3);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].members, (std::vector<size_t>{0, 1, 2}));
}

TEST(StepGroups, GateAndUpJoinTheirSwiglu) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5); // gate
  p.gemm(1, 3, 6); // up
  p.swiglu(5, 6, 7);
  p.gemm(7, 4, 8); // down
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_TRUE(groups[0].swiglu);
  EXPECT_EQ(groups[0].members, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(groups[0].at, 2u);
  EXPECT_EQ(groups[0].productInto, -1);
}

TEST(StepGroups, GateAndUpInEitherOrderAndEitherOperandOrder) {
  Plan p = qkvPlan();
  p.gemm(1, 3, 6); // up first
  p.gemm(1, 2, 5); // gate
  size_t s = p.swiglu(5, 6, 7);
  // MUL(up, silu(gate)).
  auto *mul = p.steps[s].mutable_program(3);
  mul->set_args(0, 1);
  mul->set_args(1, 2);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_TRUE(groups[0].swiglu);
  EXPECT_EQ(groups[0].members, (std::vector<size_t>{1, 0})); // gate, up
}

TEST(StepGroups, AGateReadElsewhereStaysItsOwnStep) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  p.other({5}, {8}); // the gate is read again: it must be written
  auto groups = p.groups();
  // Not a pair; gate and up may still share a launch as projections.
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_FALSE(groups[0].swiglu);
}

TEST(StepGroups, AGateThatIsAnEntryOutputStaysItsOwnStep) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  p.outputs = {5};
  auto groups = p.groups();
  for (const StepGroup &g : groups)
    EXPECT_FALSE(g.swiglu);
}

TEST(StepGroups, AProductOverTheActivationsGoesToTheUpProjectionsBytes) {
  // A decode step's layout: the planner put the product (and later the
  // down projection's output) over buffers dead by then.
  Plan p;
  p.place(1, 65536, 8192);  // x, the norm's output
  p.place(5, 0, 32768);     // gate
  p.place(6, 32768, 32768); // up
  p.place(7, 65536, 32768); // product, over x
  p.place(8, 0, 8192);      // down's output, over the gate
  p.place(9, 98304, 8192);  // the residual
  for (uint32_t w : {2, 3, 4})
    p.place(w, 1 << 20 | w << 10);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  size_t down = p.gemm(7, 4, 8);
  p.steps[down].add_inputs(9);
  p.other({8}, {1}); // the next layer's norm, over x (and the product)
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_TRUE(groups[0].swiglu);
  EXPECT_EQ(groups[0].productInto, 1);
  EXPECT_EQ(groups[0].until, down);
}

TEST(StepGroups, AProductOverTheActivationsAvoidsBytesOverwrittenTooSoon) {
  // The down projection writes over the up projection's bytes: the
  // product goes to the gate's.
  Plan p = qkvPlan();
  p.place(7, 0); // the product over x
  p.place(8, 128);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  size_t down = p.gemm(7, 4, 8);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_TRUE(groups[0].swiglu);
  EXPECT_EQ(groups[0].productInto, 0);
  EXPECT_EQ(groups[0].until, down);
}

TEST(StepGroups, AProductOverTheActivationsReadThroughAnAliasIsNotAPair) {
  // Buffer 9 shares the product's bytes (a reshape): its reader would not
  // see the product moved.
  Plan p = qkvPlan();
  p.place(7, 0);
  p.place(9, 0);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  p.gemm(9, 4, 8);
  for (const StepGroup &g : p.groups())
    EXPECT_FALSE(g.swiglu);
}

TEST(StepGroups, AProductOverTheActivationsThatIsAnOutputIsNotAPair) {
  Plan p = qkvPlan();
  p.place(7, 0);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  p.outputs = {7};
  for (const StepGroup &g : p.groups())
    EXPECT_FALSE(g.swiglu);
}

TEST(StepGroups, ActivationsOverwrittenBeforeTheSwigluAreNotAPair) {
  Plan p = qkvPlan();
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.other({9}, {1});
  p.swiglu(5, 6, 7);
  for (const StepGroup &g : p.groups())
    EXPECT_FALSE(g.swiglu);
}

/// qkvPlan with the residual stream 10 and a norm scale 11.
Plan normPlan() {
  Plan p = qkvPlan();
  p.place(10, 1024);
  p.place(11, 1 << 21);
  return p;
}

TEST(StepGroups, TheNormBeforeTheProjectionsJoinsTheirLaunch) {
  Plan p = normPlan();
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.gemm(1, 4, 7);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].norm, std::optional<size_t>(0));
  EXPECT_EQ(groups[0].members, (std::vector<size_t>{1, 2, 3}));
}

TEST(StepGroups, ANormReadElsewhereRunsOnItsOwn) {
  Plan p = normPlan();
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.other({1}, {8});
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_FALSE(groups[0].norm.has_value());
}

TEST(StepGroups, ANormWhoseInputIsOverwrittenFirstRunsOnItsOwn) {
  Plan p = normPlan();
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.other({9}, {10}); // the residual stream rewritten before k
  p.gemm(1, 3, 6);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_FALSE(groups[0].norm.has_value());
}

TEST(StepGroups, ANormReadThroughAnAliasRunsOnItsOwn) {
  Plan p = normPlan();
  p.place(12, 0); // shares the norm output's bytes
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.other({12}, {8});
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_FALSE(groups[0].norm.has_value());
}

TEST(StepGroups, ANormThatIsAnOutputRunsOnItsOwn) {
  Plan p = normPlan();
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.outputs = {1};
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_FALSE(groups[0].norm.has_value());
}

TEST(StepGroups, ALaunchWritingOverTheNormsInputLeavesTheNorm) {
  Plan p = normPlan();
  p.place(6, 1024); // k's output over the residual stream
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_FALSE(groups[0].norm.has_value());
}

TEST(StepGroups, TheNormBeforeAGatedPairJoinsIt) {
  // The decode layout of AProductOverTheActivationsGoesToTheUpProjections-
  // Bytes, with the norm that makes x.
  Plan p;
  p.place(10, 131072, 8192); // the residual stream
  p.place(11, 1 << 21);
  p.place(1, 65536, 8192);
  p.place(5, 0, 32768);
  p.place(6, 32768, 32768);
  p.place(7, 65536, 32768);
  p.place(8, 0, 8192);
  for (uint32_t w : {2, 3, 4})
    p.place(w, 1 << 20 | w << 10);
  p.norm(10, 11, 1);
  p.gemm(1, 2, 5);
  p.gemm(1, 3, 6);
  p.swiglu(5, 6, 7);
  size_t down = p.gemm(7, 4, 8);
  p.steps[down].add_inputs(10);
  auto groups = p.groups();
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_TRUE(groups[0].swiglu);
  EXPECT_EQ(groups[0].productInto, 1);
  EXPECT_EQ(groups[0].norm, std::optional<size_t>(0));
}

TEST(StepGroups, SwigluProgramsAreRecognizedExactly) {
  Plan p;
  p.swiglu(5, 6, 7);
  auto in = cuda::swigluInputs(p.steps[0]);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(*in, std::make_pair(0, 1));

  Plan q;
  q.swiglu(5, 6, 7, artifact::F32); // f32 is not the skinny GEMM's
  EXPECT_FALSE(cuda::swigluInputs(q.steps[0]).has_value());

  Step sigmoid = p.steps[0];
  sigmoid.mutable_program(2)->set_op(Instr::SIGMOID);
  EXPECT_FALSE(cuda::swigluInputs(sigmoid).has_value());

  Step add = p.steps[0];
  add.mutable_program(3)->set_op(Instr::ADD);
  EXPECT_FALSE(cuda::swigluInputs(add).has_value());

  Step square = p.steps[0]; // silu(x) * x
  square.mutable_program(3)->set_args(1, 0);
  EXPECT_FALSE(cuda::swigluInputs(square).has_value());

  Step longer = p.steps[0];
  *longer.add_program() = longer.program(3);
  EXPECT_FALSE(cuda::swigluInputs(longer).has_value());
}

//===----------------------------------------------------------------------===//
// ROTARY applied by the paged attention launch
//===----------------------------------------------------------------------===//

/// A decode attention block: q 10, k 11 and v 12 projected; cos 13 and
/// sin 14; ROTARY q -> 15 and k -> 16; PAGED_ATTENTION(15, 16, 12, caches
/// 17 and 18, positions 19, token_seq 20, block tables 21) -> 22, placed
/// over q's x (the planner's reuse: q's x is dead once rotated).
struct AttentionPlan : Plan {
  size_t rotaryQ = 0, rotaryK = 0, attention = 0;
  AttentionPlan() {
    place(10, 0);
    place(11, 64);
    place(12, 128);
    place(13, 192);
    place(14, 256);
    place(15, 320);
    place(16, 384);
    place(17, 1 << 20);
    place(18, 2 << 20);
    place(19, 448);
    place(20, 512);
    place(21, 576);
    place(22, 0);
    place(2, 3 << 20); // weights
    place(3, 4 << 20);
    rotaryQ = other({10, 13, 14}, {15});
    rotaryK = other({11, 13, 14}, {16});
  }
  void attend() {
    Step s;
    s.set_kind(Step::PAGED_ATTENTION);
    s.set_name("paged_attention");
    for (uint32_t id : {15, 16, 12, 17, 18, 19, 20, 21})
      s.add_inputs(id);
    s.add_outputs(22);
    steps.push_back(s);
    attention = steps.size() - 1;
  }
  std::vector<cuda::RotaryFusion> fusions() const {
    std::vector<const Step *> list;
    for (const Step &s : steps)
      list.push_back(&s);
    auto region = [&](uint32_t id) { return regions.at(id); };
    return cuda::findRotaryFusions(list, region, outputs);
  }
  bool fused() const {
    auto f = fusions();
    return f.size() == 1 && f[0].attention == attention &&
           f[0].rotaryQ == rotaryQ && f[0].rotaryK == rotaryK;
  }
};

TEST(RotaryFusion, TheDecodeBlockFuses) {
  AttentionPlan p;
  p.attend();
  p.place(30, 640);
  p.gemm(22, 2, 30); // the o projection reads the attention's output
  EXPECT_TRUE(p.fused());

  AttentionPlan elsewhere; // the output clear of every operand
  elsewhere.place(22, 4096);
  elsewhere.attend();
  EXPECT_TRUE(elsewhere.fused());
}

TEST(RotaryFusion, RefusedWhereAReadWouldChange) {
  {
    // The rotated q is read again after the attention.
    AttentionPlan p;
    p.attend();
    p.place(30, 640);
    p.gemm(15, 2, 30);
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // ... through another buffer over its bytes.
    AttentionPlan p;
    p.attend();
    p.place(31, 320 + 16, 16);
    p.place(30, 640);
    p.gemm(31, 2, 30);
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // Read after being written whole again: that is another value.
    AttentionPlan p;
    p.attend();
    p.place(30, 640);
    p.gemm(22, 2, 15);
    p.gemm(15, 3, 30);
    EXPECT_TRUE(p.fused());
  }
  {
    // The rotated k is an entry output.
    AttentionPlan p;
    p.attend();
    p.outputs = {16};
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // A step between the rotary steps and the attention overwrites the
    // cos the launch would read.
    AttentionPlan p;
    p.place(30, 192);
    p.gemm(12, 2, 30);
    p.attend();
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // A step between reads the rotated q.
    AttentionPlan p;
    p.place(30, 640);
    p.gemm(15, 2, 30);
    p.attend();
    EXPECT_TRUE(p.fusions().empty());
  }
}

TEST(RotaryFusion, RefusedWhereTheOutputMeetsAnOperand) {
  {
    // Over half of q's x and half of k's.
    AttentionPlan p;
    p.place(22, 32);
    p.attend();
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // Over v.
    AttentionPlan p;
    p.place(22, 128);
    p.attend();
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // Over the positions.
    AttentionPlan p;
    p.place(22, 448);
    p.attend();
    EXPECT_TRUE(p.fusions().empty());
  }
}

TEST(RotaryFusion, OnlyRotaryStepsWritingExactlyQAndK) {
  {
    // q comes from a projection.
    AttentionPlan p;
    p.steps.clear();
    p.rotaryQ = p.gemm(10, 2, 15);
    p.rotaryK = p.other({11, 13, 14}, {16});
    p.attend();
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // The rotary writes more than the bytes the attention reads as q.
    AttentionPlan p;
    p.place(15, 320, 128);
    p.place(16, 448);
    p.place(19, 2048);
    p.place(32, 320);
    p.attend();
    p.steps[p.attention].set_inputs(0, 32);
    EXPECT_TRUE(p.fusions().empty());
  }
  {
    // One rotary step for both.
    AttentionPlan p;
    p.attend();
    p.steps[p.attention].set_inputs(1, 15);
    EXPECT_TRUE(p.fusions().empty());
  }
}

} // namespace
} // namespace weft::runtime::test
