// The generation engine over real sessions of a two-rank artifact whose
// entries only copy an input to weft.next_ids on rank 1: rank 0 learns the
// sampled ids from rank 1, and both ranks run the same steps.
#include "runtime/artifact/Sha256.h"
#include "runtime/generate/SessionModel.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

using namespace weft::runtime;
using namespace weft::runtime::test;
using weft::artifact::Buffer;
using weft::artifact::Plan;
using weft::artifact::Step;

namespace {

uint32_t addI32(Plan &plan, Buffer::Kind kind, const std::string &name,
                Shape shape, uint64_t offset) {
  Buffer *b = plan.add_buffers();
  uint32_t id = static_cast<uint32_t>(plan.buffers_size() - 1);
  b->set_id(id);
  b->set_kind(kind);
  b->set_dtype(DType::I32);
  int64_t count = 1;
  for (int64_t d : shape) {
    b->add_shape(d);
    count *= d;
  }
  b->set_offset(offset);
  b->set_bytes(count * 4);
  b->set_name(name);
  return id;
}

/// Entry `name` copying input `from` (i32 of `inShape`) to weft.next_ids
/// (i32 [rows]); on rank 0 the entry does nothing.
void addCopyEntry(Plan &plan, bool holdsIds, const std::string &name,
                  const std::string &from, Shape inShape, int64_t rows) {
  weft::artifact::EntryPoint *entry = plan.add_entry_points();
  entry->set_name(name);
  if (!holdsIds)
    return;
  uint64_t offset = plan.buffers_size() * 64;
  uint32_t in = addI32(plan, Buffer::INPUT, from, inShape, offset);
  uint32_t out =
      addI32(plan, Buffer::OUTPUT, generate::kNextIds, {rows}, offset + 32);
  entry->add_inputs(in);
  entry->add_outputs(out);
  Step *copy = entry->add_steps();
  copy->set_kind(Step::COPY);
  copy->set_name("ids");
  copy->add_inputs(in);
  copy->add_outputs(out);
}

struct CopyArtifact {
  CopyArtifact() {
    weft::artifact::Manifest manifest;
    manifest.set_format_version(kArtifactFormatVersion);
    manifest.set_world_size(2);
    weft::artifact::Generation *gen = manifest.mutable_generation();
    gen->set_max_seq(8);
    gen->set_block_size(8);
    gen->set_blocks_per_seq(1);
    gen->add_prompt_buckets(8);
    gen->add_batch_buckets(1);
    gen->add_batch_buckets(2);
    gen->set_prefill_rows(2);
    gen->set_token_input("input_ids");
    gen->set_logits_output("logits");
    for (uint32_t r = 0; r < 2; ++r) {
      Plan plan;
      plan.set_format_version(kArtifactFormatVersion);
      plan.set_rank(r);
      // Prefill: each row's first block; decode: each row's index.
      addCopyEntry(plan, r == 1, "prefill@8", generate::kBlockTables, {2, 1},
                   2);
      addCopyEntry(plan, r == 1, "decode@1", generate::kTokenSeq, {1}, 1);
      addCopyEntry(plan, r == 1, "decode@2", generate::kTokenSeq, {2}, 2);
      plan.set_arena_bytes(1024);
      std::string file = "rank" + std::to_string(r) + ".plan.pb";
      std::string bytes = plan.SerializeAsString();
      writeFile(dir.file(file), bytes);
      auto *rank = manifest.add_ranks();
      rank->set_rank(r);
      rank->set_plan_file(file);
      rank->set_plan_sha256(sha256Hex(bytes.data(), bytes.size()));
    }
    writeFile(dir.file("manifest.pb"), manifest.SerializeAsString());
  }
  TempDir dir;
};

} // namespace

TEST(GenerateSessionTest, RanksShareTheSampledIds) {
  CopyArtifact copy;
  auto artifact = readManifest(copy.dir.path);
  ASSERT_TRUE(artifact.ok()) << artifact.message();
  std::vector<generate::Request> requests(2);
  requests[0].promptIds = {5, 6};
  requests[1].promptIds = {7, 8, 9};
  for (generate::Request &r : requests)
    r.maxTokens = 3;
  generate::RankGenerateOptions options;
  options.threads = 1;
  options.engine.kvCacheBlocks = 2;
  auto results = generate::generateLocalRanks(*artifact, requests, options,
                                              std::chrono::seconds(30));
  ASSERT_TRUE(results.ok()) << results.message();
  ASSERT_EQ(results->size(), 2u);
  // The prefill gives each row its block (0, 1); the decodes each row's
  // index in the batch (0, 1).
  EXPECT_EQ((*results)[0].ids, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_EQ((*results)[1].ids, (std::vector<uint32_t>{1, 1, 1}));
  EXPECT_EQ((*results)[1].promptIds, (std::vector<uint32_t>{7, 8, 9}));
}

TEST(GenerateSessionTest, RefusesAnArtifactWithoutGeneration) {
  CopyArtifact copy;
  auto artifact = readManifest(copy.dir.path);
  ASSERT_TRUE(artifact.ok()) << artifact.message();
  artifact->manifest.clear_generation();
  std::vector<generate::Request> requests(1);
  requests[0].promptIds = {1};
  generate::RankGenerateOptions options;
  options.engine.kvCacheBlocks = 2;
  auto results = generate::generateLocalRanks(*artifact, requests, options,
                                              std::chrono::seconds(30));
  ASSERT_FALSE(results.ok());
  EXPECT_NE(results.message().find("no generation entry points"),
            std::string::npos)
      << results.message();
}
