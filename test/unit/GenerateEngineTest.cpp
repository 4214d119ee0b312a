// Unit tests of the generation engine over a fake model: the KV block
// allocator, stop strings, prompt packing and chunking, batch buckets,
// waiting for cache blocks, and the inputs of every step.
#include "runtime/generate/Engine.h"
#include "runtime/generate/KvBlockAllocator.h"
#include "runtime/generate/StopStrings.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace weft::runtime;
using namespace weft::runtime::generate;

namespace {

constexpr uint32_t kLetters = 26, kEos = 26;

/// The next id of a sequence: a hash of all its tokens and its seed.
uint32_t nextOf(const std::vector<int64_t> &tokens, int64_t seed) {
  uint64_t h = 1469598103934665603ull ^ static_cast<uint64_t>(seed);
  for (int64_t t : tokens)
    h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
  return static_cast<uint32_t>((h >> 17) % kLetters);
}

/// What the engine should produce for `prompt`: `count` ids, ignoring
/// EOS and stop strings.
std::vector<uint32_t> reference(const std::vector<uint32_t> &prompt,
                                int64_t count, int64_t seed = 0) {
  std::vector<int64_t> tokens(prompt.begin(), prompt.end());
  std::vector<uint32_t> out;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t id = nextOf(tokens, seed);
    out.push_back(id);
    tokens.push_back(id);
  }
  return out;
}

std::string lettersOf(const std::vector<uint32_t> &ids) {
  std::string s;
  for (uint32_t id : ids)
    s += static_cast<char>('a' + id);
  return s;
}

template <typename T> std::vector<T> valuesOf(const NpyArray &a) {
  std::vector<T> v(a.data.size() / sizeof(T));
  std::memcpy(v.data(), a.data.data(), a.data.size());
  return v;
}

/// A model whose cache is real (tokens stored by block and slot) and whose
/// next id hashes the tokens read back through the block table, so that a
/// wrong table, position or packing gives wrong ids. It fails a step whose
/// inputs are malformed.
class FakeModel : public StepModel {
public:
  FakeModel(const weft::artifact::Generation &gen, uint64_t blocks)
      : gen(gen), blocks(blocks),
        cache(blocks, std::vector<int64_t>(gen.block_size(), -1)) {}

  std::vector<std::string> entries;
  /// The most rows with tokens in one step.
  size_t mostLiveRows = 0;

  Result<std::vector<int32_t>>
  runStep(const std::string &entry,
          std::span<const NpyArray *const> inputs) override {
    entries.push_back(entry);
    std::map<std::string, const NpyArray *> byName;
    for (const NpyArray *a : inputs)
      byName[a->name] = a;
    bool prefill = entry.rfind("prefill@", 0) == 0;
    int64_t size = std::stoll(entry.substr(entry.find('@') + 1));
    const auto &buckets = prefill ? gen.prompt_buckets() : gen.batch_buckets();
    if (std::find(buckets.begin(), buckets.end(), size) == buckets.end())
      return errorStatus("no such bucket: " + entry);
    int64_t tokens = size;
    int64_t rows = prefill ? std::min(gen.prefill_rows(), tokens) : size;
    for (const weft::artifact::GenerationEntry &e : gen.entries())
      if (e.name() == entry) {
        tokens = e.tokens();
        rows = e.rows();
      }
    int64_t perSeq = gen.blocks_per_seq(), bs = gen.block_size();
    auto check = [&](const char *name, DType dtype,
                     Shape shape) -> const NpyArray * {
      auto it = byName.find(name);
      if (it == byName.end() || it->second->dtype != dtype ||
          it->second->shape != shape)
        return nullptr;
      return it->second;
    };
    const NpyArray *ids = check("input_ids", DType::I64, {1, tokens});
    const NpyArray *pos = check(kPositions, DType::I64, {1, tokens});
    const NpyArray *seq = check(kTokenSeq, DType::I32, {tokens});
    const NpyArray *tab = check(kBlockTables, DType::I32, {rows, perSeq});
    const NpyArray *lr = check(kLogitRows, DType::I64, {rows});
    const NpyArray *sp = check(kSampleParams, DType::F32, {rows, 3});
    const NpyArray *ss = check(kSampleSeeds, DType::I64, {rows, 2});
    if (!ids || !pos || !seq || !tab || !lr || !sp || !ss)
      return errorStatus("malformed inputs of " + entry);
    auto idv = valuesOf<int64_t>(*ids), posv = valuesOf<int64_t>(*pos);
    auto seqv = valuesOf<int32_t>(*seq), tabv = valuesOf<int32_t>(*tab);
    auto lrv = valuesOf<int64_t>(*lr), ssv = valuesOf<int64_t>(*ss);

    // Each row's tokens are at consecutive positions; its used blocks are
    // valid and no other row's.
    std::map<int32_t, int64_t> lastPos;
    std::map<int32_t, int32_t> owner;
    for (int64_t t = 0; t < tokens; ++t) {
      int32_t s = seqv[t];
      if (s < -1 || s >= rows)
        return errorStatus("token_seq out of range");
      if (s < 0)
        continue;
      if (lastPos.count(s) && posv[t] != lastPos[s] + 1)
        return errorStatus("positions of a row are not consecutive");
      lastPos[s] = posv[t];
    }
    mostLiveRows = std::max(mostLiveRows, lastPos.size());
    for (auto [s, last] : lastPos)
      for (int64_t b = 0; b <= last / bs; ++b) {
        int32_t block = tabv[s * perSeq + b];
        if (block < 0 || static_cast<uint64_t>(block) >= blocks)
          return errorStatus("a block id out of range");
        if (owner.count(block) && owner[block] != s)
          return errorStatus("a block shared by two rows");
        owner[block] = s;
      }
    for (int64_t t = 0; t < tokens; ++t)
      if (seqv[t] >= 0) {
        int32_t block = tabv[seqv[t] * perSeq + posv[t] / bs];
        cache[block][posv[t] % bs] = idv[t];
      }
    std::vector<int32_t> next(rows, 0);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t t = prefill ? lrv[r] : r;
      if (t < 0 || t >= tokens)
        return errorStatus("logit_rows out of range");
      if (seqv[t] != r)
        continue;
      if (ssv[r * 2 + 1] != posv[t] + 1)
        return errorStatus("the seed's position is not the sampled one's");
      std::vector<int64_t> history;
      for (int64_t p = 0; p <= posv[t]; ++p) {
        int64_t stored = cache[tabv[r * perSeq + p / bs]][p % bs];
        if (stored < 0)
          return errorStatus("a position read before it was written");
        history.push_back(stored);
      }
      next[r] = static_cast<int32_t>(nextOf(history, ssv[r * 2]));
    }
    return next;
  }

private:
  const weft::artifact::Generation &gen;
  uint64_t blocks;
  std::vector<std::vector<int64_t>> cache;
};

weft::artifact::Generation makeGeneration(std::vector<int64_t> prompts,
                                          std::vector<int64_t> batches,
                                          int64_t maxSeq = 64,
                                          int64_t blockSize = 4,
                                          int64_t prefillRows = 4) {
  weft::artifact::Generation gen;
  gen.set_max_seq(maxSeq);
  gen.set_block_size(blockSize);
  gen.set_blocks_per_seq((maxSeq + blockSize - 1) / blockSize);
  for (int64_t t : prompts)
    gen.add_prompt_buckets(t);
  for (int64_t b : batches)
    gen.add_batch_buckets(b);
  gen.set_prefill_rows(prefillRows);
  gen.set_token_input("input_ids");
  gen.set_logits_output("logits");
  gen.set_vocab(kLetters + 1);
  return gen;
}

/// Letters a..z as ids 0..25, <eos> 26; decoding concatenates.
std::shared_ptr<const weft::tokenizer::Tokenizer> letterTokenizer() {
  std::string vocab;
  for (uint32_t i = 0; i < kLetters; ++i)
    vocab += (i ? ", \"" : "\"") + std::string(1, char('a' + i)) +
             "\": " + std::to_string(i);
  auto t = weft::tokenizer::Tokenizer::fromJson(
      R"({"added_tokens": [{"id": 26, "content": "<eos>", "special": true,
          "normalized": false}],
          "decoder": {"type": "Fuse"},
          "model": {"type": "BPE", "vocab": {)" +
          vocab + R"(}, "merges": []}})",
      "tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.message();
  return t.ok() ? *t : nullptr;
}

Request request(std::vector<uint32_t> prompt, int64_t maxTokens) {
  Request r;
  r.promptIds = std::move(prompt);
  r.maxTokens = maxTokens;
  return r;
}

std::vector<uint32_t> promptOf(size_t length, uint32_t salt) {
  std::vector<uint32_t> p;
  for (size_t i = 0; i < length; ++i)
    p.push_back((salt * 7 + i * 3) % kLetters);
  return p;
}

} // namespace

TEST(KvBlockAllocatorTest, ReservesGrowsAndFrees) {
  KvBlockAllocator blocks(4, 16);
  EXPECT_EQ(blocks.blocksFor(0), 0u);
  EXPECT_EQ(blocks.blocksFor(16), 1u);
  EXPECT_EQ(blocks.blocksFor(17), 2u);
  BlockTable a, b;
  ASSERT_TRUE(blocks.reserve(a, 3));
  EXPECT_EQ(blocks.availableBlocks(), 1u);
  EXPECT_FALSE(blocks.reserve(b, 2));
  ASSERT_TRUE(blocks.grow(a, 20));
  EXPECT_EQ(a.blocks, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(a.reserved, 1u);
  ASSERT_TRUE(blocks.reserve(b, 1));
  ASSERT_TRUE(blocks.grow(b, 1));
  EXPECT_EQ(b.blocks, (std::vector<int32_t>{2}));
  // Beyond both reservations: nothing left.
  EXPECT_FALSE(blocks.grow(b, 17));
  blocks.release(a);
  EXPECT_EQ(blocks.availableBlocks(), 3u);
  ASSERT_TRUE(blocks.grow(b, 40));
  EXPECT_EQ(b.blocks.size(), 3u);
}

TEST(StopStringFilterTest, HoldsBackPossibleStartsAndDropsTheStop) {
  StopStringFilter filter({"END", "xy"});
  EXPECT_EQ(filter.push("abE"), "ab");
  EXPECT_EQ(filter.push("N"), "");
  // "ENx" cannot start END any more; "x" may start "xy".
  EXPECT_EQ(filter.push("x"), "EN");
  EXPECT_EQ(filter.push("z"), "xz");
  EXPECT_EQ(filter.push("qE"), "q");
  EXPECT_EQ(filter.push("ND tail"), "");
  EXPECT_TRUE(filter.stopped());
  EXPECT_EQ(filter.push("more"), "");
  EXPECT_EQ(filter.finish(), "");

  StopStringFilter open({"END"});
  EXPECT_EQ(open.push("aEN"), "a");
  EXPECT_EQ(open.finish(), "EN");
}

TEST(GenerateEngineTest, GreedyMatchesTheReferenceAndStreams) {
  auto gen = makeGeneration({8, 16}, {1, 2, 4});
  FakeModel model(gen, 32);
  EngineOptions options;
  options.kvCacheBlocks = 32;
  options.tokenizer = letterTokenizer();
  std::string streamed;
  options.onText = [&](size_t request, std::string_view text) {
    EXPECT_EQ(request, 0u);
    streamed += text;
  };
  std::vector<uint32_t> prompt = promptOf(5, 1);
  auto results = runGeneration(gen, model, {request(prompt, 10)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  ASSERT_EQ(results->size(), 1u);
  const SequenceResult &r = (*results)[0];
  EXPECT_EQ(r.promptIds, prompt);
  EXPECT_EQ(r.ids, reference(prompt, 10));
  EXPECT_EQ(r.text, lettersOf(r.ids));
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.finishReason, FinishReason::Length);
  EXPECT_EQ(model.entries.front(), "prefill@8");
  EXPECT_EQ(model.entries.size(), 10u);
  EXPECT_EQ(model.entries.back(), "decode@1");
}

TEST(GenerateEngineTest, PacksPromptsIntoOnePrefill) {
  auto gen = makeGeneration({8, 16}, {1, 2, 4}, 64, 4, /*prefillRows=*/3);
  FakeModel model(gen, 64);
  EngineOptions options;
  options.kvCacheBlocks = 64;
  std::vector<Request> requests;
  for (uint32_t i = 0; i < 4; ++i)
    requests.push_back(request(promptOf(3 + i, i), 4));
  auto results = runGeneration(gen, model, requests, options);
  ASSERT_TRUE(results.ok()) << results.message();
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ((*results)[i].ids, reference(requests[i].promptIds, 4)) << i;
  // 3 + 4 + 5 tokens in three rows (the most), then the fourth alone.
  EXPECT_EQ(model.entries[0], "prefill@16");
  EXPECT_EQ(model.entries[1], "prefill@8");
  EXPECT_EQ(model.entries[2], "decode@4");
}

TEST(GenerateEngineTest, EntriesGiveTokensAndRows) {
  // As `weft compile --generate` writes them: decode@1 runs 2 tokens and 2
  // rows (the second padding).
  auto gen = makeGeneration({8}, {1, 4}, 64, 4, /*prefillRows=*/2);
  auto addEntry = [&](const std::string &name, bool prefill, int64_t tokens,
                      int64_t rows, int64_t bucket) {
    weft::artifact::GenerationEntry *e = gen.add_entries();
    e->set_name(name);
    e->set_prefill(prefill);
    e->set_tokens(tokens);
    e->set_rows(rows);
    e->set_bucket(bucket);
  };
  addEntry("prefill@8", true, 8, 2, 8);
  addEntry("decode@1", false, 2, 2, 1);
  addEntry("decode@4", false, 4, 4, 4);
  FakeModel model(gen, 32);
  EngineOptions options;
  options.kvCacheBlocks = 32;
  std::vector<uint32_t> prompt = promptOf(5, 7);
  auto results = runGeneration(gen, model, {request(prompt, 4)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  EXPECT_EQ((*results)[0].ids, reference(prompt, 4));
  EXPECT_EQ(model.entries.back(), "decode@1");
}

TEST(GenerateEngineTest, LongPromptsGoInChunksOfTheLargestBucket) {
  auto gen = makeGeneration({4, 8}, {1, 2});
  FakeModel model(gen, 64);
  EngineOptions options;
  options.kvCacheBlocks = 64;
  std::vector<uint32_t> prompt = promptOf(21, 5);
  auto results = runGeneration(gen, model, {request(prompt, 6)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  EXPECT_EQ((*results)[0].ids, reference(prompt, 6));
  EXPECT_EQ(model.entries[0], "prefill@8");
  EXPECT_EQ(model.entries[1], "prefill@8");
  EXPECT_EQ(model.entries[2], "prefill@8");
  EXPECT_EQ(model.entries[3], "decode@1");
}

TEST(GenerateEngineTest, MoreSequencesThanTheLargestBatch) {
  auto gen = makeGeneration({8, 32}, {1, 2});
  FakeModel model(gen, 64);
  EngineOptions options;
  options.kvCacheBlocks = 64;
  std::vector<Request> requests;
  for (uint32_t i = 0; i < 5; ++i) {
    requests.push_back(request(promptOf(2 + i, i), 3 + i));
    requests.back().sampling.seed = i;
    requests.back().sampling.temperature = 0.5f;
  }
  auto results = runGeneration(gen, model, requests, options);
  ASSERT_TRUE(results.ok()) << results.message();
  for (size_t i = 0; i < 5; ++i)
    EXPECT_EQ((*results)[i].ids,
              reference(requests[i].promptIds, 3 + i, static_cast<int64_t>(i)))
        << i;
  // One prefill packs them all (prefill_rows 4: then the fifth), then
  // decodes of 2, 2 and 1 rows.
  EXPECT_EQ(model.entries[0], "prefill@32");
  EXPECT_EQ(model.entries[1], "prefill@8");
  EXPECT_EQ(model.entries[2], "decode@2");
  EXPECT_EQ(model.entries[3], "decode@2");
  EXPECT_EQ(model.entries[4], "decode@1");
}

TEST(GenerateEngineTest, SequencesWaitForBlocks) {
  // Each sequence needs up to 3 blocks of 4; the cache has 4.
  auto gen = makeGeneration({8}, {1, 2});
  FakeModel model(gen, 4);
  EngineOptions options;
  options.kvCacheBlocks = 4;
  std::vector<Request> requests;
  for (uint32_t i = 0; i < 3; ++i)
    requests.push_back(request(promptOf(6, i), 6));
  auto results = runGeneration(gen, model, requests, options);
  ASSERT_TRUE(results.ok()) << results.message();
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ((*results)[i].ids, reference(requests[i].promptIds, 6)) << i;
  EXPECT_EQ(model.mostLiveRows, 1u);
  int prefills = 0;
  for (const std::string &e : model.entries)
    prefills += e.rfind("prefill@", 0) == 0;
  EXPECT_EQ(prefills, 3);
}

TEST(GenerateEngineTest, RefusesASequenceThatCanNeverFit) {
  auto gen = makeGeneration({8}, {1});
  FakeModel model(gen, 2);
  EngineOptions options;
  options.kvCacheBlocks = 2;
  auto results =
      runGeneration(gen, model, {request(promptOf(6, 0), 8)}, options);
  ASSERT_FALSE(results.ok());
  EXPECT_EQ(results.message(),
            "prompt 1 needs 4 KV cache blocks (6 prompt tokens + 8 new, block "
            "size 4), but the cache has 2: give more blocks or fewer new "
            "tokens");
  EXPECT_TRUE(model.entries.empty());
}

TEST(GenerateEngineTest, RefusesAPromptThatFillsMaxSeq) {
  auto gen = makeGeneration({8}, {1}, /*maxSeq=*/8);
  FakeModel model(gen, 8);
  EngineOptions options;
  options.kvCacheBlocks = 8;
  auto results =
      runGeneration(gen, model, {request(promptOf(8, 0), 1)}, options);
  ASSERT_FALSE(results.ok());
  EXPECT_NE(results.message().find("max_seq 8 leaves no room"),
            std::string::npos)
      << results.message();
}

TEST(GenerateEngineTest, MaxSeqCapsTheNewTokens) {
  auto gen = makeGeneration({8}, {1}, /*maxSeq=*/12);
  FakeModel model(gen, 8);
  EngineOptions options;
  options.kvCacheBlocks = 8;
  std::vector<uint32_t> prompt = promptOf(5, 2);
  auto results = runGeneration(gen, model, {request(prompt, 100)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  EXPECT_EQ((*results)[0].ids, reference(prompt, 7));
  EXPECT_EQ((*results)[0].finishReason, FinishReason::Length);
}

TEST(GenerateEngineTest, StopStringsSpanTokensAndAreNotShown) {
  auto gen = makeGeneration({8}, {1, 2});
  std::vector<uint32_t> prompt = promptOf(4, 3);
  std::string full = lettersOf(reference(prompt, 12));
  // Spans the third and fourth new tokens.
  std::string stop = full.substr(2, 2);
  size_t cut = full.find(stop);
  FakeModel model(gen, 16);
  EngineOptions options;
  options.kvCacheBlocks = 16;
  options.tokenizer = letterTokenizer();
  std::string streamed;
  options.onText = [&](size_t, std::string_view text) { streamed += text; };
  Request r = request(prompt, 12);
  r.stopStrings = {"not there", stop};
  auto results = runGeneration(gen, model, {r}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  const SequenceResult &out = (*results)[0];
  EXPECT_EQ(out.finishReason, FinishReason::Stop);
  EXPECT_EQ(out.text, full.substr(0, cut));
  EXPECT_EQ(streamed, out.text);
  EXPECT_EQ(out.ids.size(), cut + stop.size());
}

TEST(GenerateEngineTest, EosEndsTheSequenceWithoutText) {
  auto gen = makeGeneration({8}, {1, 2});
  std::vector<uint32_t> prompt = promptOf(4, 4);
  std::vector<uint32_t> ref = reference(prompt, 12);
  FakeModel model(gen, 16);
  EngineOptions options;
  options.kvCacheBlocks = 16;
  options.tokenizer = letterTokenizer();
  // Treat the fourth new id as an end of sequence.
  options.eosIds = {kEos, ref[3]};
  auto results = runGeneration(gen, model, {request(prompt, 12)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  const SequenceResult &out = (*results)[0];
  size_t end = std::find(ref.begin(), ref.end(), ref[3]) - ref.begin();
  EXPECT_EQ(out.finishReason, FinishReason::Stop);
  EXPECT_EQ(out.ids, std::vector<uint32_t>(ref.begin(), ref.begin() + end + 1));
  EXPECT_EQ(out.text,
            lettersOf(std::vector<uint32_t>(ref.begin(), ref.begin() + end)));
}

TEST(GenerateEngineTest, OnDemandAdmissionPreemptsAndRecomputes) {
  // Each sequence needs up to 3 blocks of 4; the cache has 4: on demand,
  // two start together and the newer is preempted when they grow.
  auto gen = makeGeneration({8}, {1, 2});
  FakeModel model(gen, 4);
  EngineOptions options;
  options.kvCacheBlocks = 4;
  options.admission = Admission::OnDemand;
  options.watermark = 0;
  auto engine = GenerationEngine::create(gen, model, options);
  ASSERT_TRUE(engine.ok()) << engine.message();
  std::vector<Request> requests;
  std::vector<SequenceResult> results(3);
  for (uint32_t i = 0; i < 3; ++i) {
    requests.push_back(request(promptOf(6, i), 6));
    SequenceSink sink;
    sink.onFinish = [&results, i](SequenceResult r) {
      results[i] = std::move(r);
    };
    ASSERT_TRUE((*engine)->add(requests.back(), sink).ok());
  }
  for (int steps = 0; (*engine)->busy() && steps < 200; ++steps)
    ASSERT_TRUE((*engine)->step().ok());
  ASSERT_FALSE((*engine)->busy());
  uint64_t preempted = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].ids, reference(requests[i].promptIds, 6)) << i;
    preempted += results[i].preemptions;
  }
  EngineStats stats = (*engine)->stats();
  EXPECT_GT(stats.preemptions, 0u);
  EXPECT_EQ(stats.preemptions, preempted);
  EXPECT_EQ(stats.freeBlocks, 4u);
  EXPECT_EQ(stats.generatedTokens, 18u);
  EXPECT_GE(model.mostLiveRows, 2u);
}

TEST(GenerateEngineTest, SequencesJoinAndLeaveBetweenSteps) {
  auto gen = makeGeneration({8, 16}, {1, 2, 4});
  FakeModel model(gen, 32);
  EngineOptions options;
  options.kvCacheBlocks = 32;
  options.admission = Admission::OnDemand;
  options.maxRunning = 2;
  auto engine = GenerationEngine::create(gen, model, options);
  ASSERT_TRUE(engine.ok()) << engine.message();
  std::map<uint64_t, SequenceResult> done;
  std::map<uint64_t, size_t> tokens;
  auto add = [&](std::vector<uint32_t> prompt, int64_t n) {
    std::shared_ptr<uint64_t> self = std::make_shared<uint64_t>(0);
    SequenceSink sink;
    sink.onToken = [&tokens, self](uint32_t, std::string_view) {
      ++tokens[*self];
    };
    sink.onFinish = [&done, self](SequenceResult r) {
      done[*self] = std::move(r);
    };
    auto id = (*engine)->add(request(std::move(prompt), n), sink);
    EXPECT_TRUE(id.ok()) << id.message();
    *self = *id;
    return *id;
  };
  uint64_t a = add(promptOf(5, 1), 8), b = add(promptOf(3, 2), 8);
  uint64_t c = add(promptOf(4, 3), 5);
  ASSERT_TRUE((*engine)->step().ok()); // prefills a and b (max 2 running)
  EXPECT_EQ((*engine)->stats().running, 2u);
  EXPECT_EQ((*engine)->stats().waiting, 1u);
  ASSERT_TRUE((*engine)->step().ok()); // decodes a and b
  EXPECT_EQ(model.entries.back(), "decode@2");
  (*engine)->cancel(b);
  EXPECT_EQ((*engine)->stats().running, 1u);
  uint64_t d = add(promptOf(7, 4), 3);
  for (int steps = 0; (*engine)->busy() && steps < 100; ++steps)
    ASSERT_TRUE((*engine)->step().ok());
  EXPECT_EQ(done.count(b), 0u);
  EXPECT_EQ(done[a].ids, reference(promptOf(5, 1), 8));
  EXPECT_EQ(done[c].ids, reference(promptOf(4, 3), 5));
  EXPECT_EQ(done[d].ids, reference(promptOf(7, 4), 3));
  EXPECT_EQ(tokens[a], 8u);
  EXPECT_EQ(tokens[b], 2u);
  EXPECT_EQ((*engine)->stats().freeBlocks, 32u);
  EXPECT_EQ((*engine)->stats().running, 0u);
  // Refusals name no request.
  auto bad = (*engine)->add(request({}, 4), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "has no tokens");
}

TEST(GenerateEngineTest, FixedShapesRunTheLargestBuckets) {
  auto gen = makeGeneration({8, 16}, {1, 2, 4});
  FakeModel model(gen, 32);
  EngineOptions options;
  options.kvCacheBlocks = 32;
  options.fixedShapes = true;
  std::vector<uint32_t> prompt = promptOf(5, 1);
  auto results = runGeneration(gen, model, {request(prompt, 4)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  EXPECT_EQ((*results)[0].ids, reference(prompt, 4));
  EXPECT_EQ(model.entries, (std::vector<std::string>{"prefill@16", "decode@4",
                                                     "decode@4", "decode@4"}));
}

namespace {

/// Three prompts of `length` tokens, 3 new tokens each, on a cache of 32
/// blocks: their ids checked against the reference; the entries that ran.
std::vector<std::string> entriesOfThree(const weft::artifact::Generation &gen,
                                        EngineOptions options, size_t length) {
  FakeModel model(gen, 32);
  options.kvCacheBlocks = 32;
  std::vector<Request> requests;
  for (uint32_t i = 0; i < 3; ++i)
    requests.push_back(request(promptOf(length, i), 3));
  auto results = runGeneration(gen, model, requests, options);
  EXPECT_TRUE(results.ok()) << results.message();
  if (results.ok()) {
    for (size_t i = 0; i < 3; ++i)
      EXPECT_EQ((*results)[i].ids, reference(requests[i].promptIds, 3)) << i;
  }
  return model.entries;
}

/// The first `n` of `entries` (all of them if fewer).
std::vector<std::string> firstEntries(const std::vector<std::string> &entries,
                                      size_t n) {
  return {entries.begin(), entries.begin() + std::min(n, entries.size())};
}

} // namespace

TEST(GenerateEngineTest, AlternateDecodesBetweenPrefills) {
  // Prompts admitted one at a time (prefill_rows 1): with `alternate`, the
  // first sequence decodes between the others' prefills.
  auto gen = makeGeneration({8}, {1, 2, 4}, 64, 4, /*prefillRows=*/1);
  EngineOptions options;
  options.alternate = true;
  EXPECT_EQ(firstEntries(entriesOfThree(gen, options, 5), 5),
            (std::vector<std::string>{"prefill@8", "decode@1", "prefill@8",
                                      "decode@2", "prefill@8"}));
}

TEST(GenerateEngineTest, MixedStepsCarryDecodesAndPromptChunks) {
  // Two short prompts and one of 30 tokens (more than the largest bucket):
  // the short ones are prefilled together, then every step until the long
  // one is in carries their next tokens beside a chunk of it, filling the
  // bucket; only then do pure decode steps follow.
  auto gen = makeGeneration({8, 16}, {1, 2, 4}, 64, 4, /*prefillRows=*/4);
  FakeModel model(gen, 64);
  EngineOptions options;
  options.kvCacheBlocks = 64;
  options.admission = Admission::OnDemand;
  options.mixed = true;
  std::vector<Request> requests = {request(promptOf(5, 1), 6),
                                   request(promptOf(30, 2), 3),
                                   request(promptOf(5, 3), 6)};
  auto results = runGeneration(gen, model, requests, options);
  ASSERT_TRUE(results.ok()) << results.message();
  for (size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ((*results)[i].ids,
              reference(requests[i].promptIds, requests[i].maxTokens))
        << i;
  // prefill@16: the two short prompts (10 tokens; the long one waits for a
  // whole bucket). Then 2 decode tokens + 14 of the long prompt, twice,
  // and 2 + its last 2 tokens; the rest are decodes of all three.
  ASSERT_GE(model.entries.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(model.entries.begin(),
                                     model.entries.begin() + 5),
            (std::vector<std::string>{"prefill@16", "prefill@16", "prefill@16",
                                      "prefill@8", "decode@4"}));
  for (size_t i = 4; i < model.entries.size(); ++i)
    EXPECT_EQ(model.entries[i].rfind("decode@", 0), 0u) << model.entries[i];
  // The short sequences' 6 tokens: 1 from their prefill, 3 from the mixed
  // steps, 2 from decodes (which also give the long one its 2 more).
  EXPECT_EQ(model.entries.size(), 4u + 2u);
}

TEST(GenerateEngineTest, MaxStepTokensCapsPrefillChunks) {
  // Buckets 4 and 8, steps of at most 6 tokens: the 4 bucket (the largest
  // within 6), so 21 prompt tokens take six prefills (5 x 4 + 1).
  auto gen = makeGeneration({4, 8}, {1, 2});
  FakeModel model(gen, 64);
  EngineOptions options;
  options.kvCacheBlocks = 64;
  options.maxStepTokens = 6;
  std::vector<uint32_t> prompt = promptOf(21, 5);
  auto results = runGeneration(gen, model, {request(prompt, 6)}, options);
  ASSERT_TRUE(results.ok()) << results.message();
  EXPECT_EQ((*results)[0].ids, reference(prompt, 6));
  ASSERT_EQ(model.entries.size(), 6u + 5u);
  for (size_t i = 0; i < 6; ++i)
    EXPECT_EQ(model.entries[i], "prefill@4") << i;
  EXPECT_EQ(model.entries[6], "decode@1");
}

TEST(GenerateEngineTest, MaxStepTokensCapsMixedSteps) {
  // As MixedStepsCarryDecodesAndPromptChunks, with steps of at most 8
  // tokens: no step runs the 16 bucket, each mixed one fills 8 with the
  // running sequences' tokens and prompt chunks, and every sequence still
  // gets the reference's tokens.
  auto gen = makeGeneration({8, 16}, {1, 2, 4}, 64, 4, /*prefillRows=*/4);
  std::vector<Request> requests = {request(promptOf(5, 1), 6),
                                   request(promptOf(30, 2), 3),
                                   request(promptOf(5, 3), 6)};
  auto steps = [&](int64_t maxStepTokens) {
    FakeModel model(gen, 64);
    EngineOptions options;
    options.kvCacheBlocks = 64;
    options.admission = Admission::OnDemand;
    options.mixed = true;
    options.maxStepTokens = maxStepTokens;
    auto results = runGeneration(gen, model, requests, options);
    EXPECT_TRUE(results.ok()) << results.message();
    for (size_t i = 0; results.ok() && i < requests.size(); ++i)
      EXPECT_EQ((*results)[i].ids,
                reference(requests[i].promptIds, requests[i].maxTokens))
          << maxStepTokens << " " << i;
    return model.entries;
  };
  std::vector<std::string> capped = steps(8), whole = steps(0);
  int prefills = 0;
  for (const std::string &e : capped) {
    EXPECT_NE(e, "prefill@16");
    prefills += e == "prefill@8";
  }
  // 40 prompt tokens and the running sequences' tokens, 8 a step at most.
  EXPECT_GE(prefills, 5);
  EXPECT_GT(capped.size(), whole.size());
  EXPECT_EQ(whole[0], "prefill@16");
  // A cap of 15 is the 8 bucket too; one of 16 or more is no cap.
  EXPECT_EQ(steps(15), capped);
  EXPECT_EQ(steps(100), whole);
}

TEST(GenerateEngineTest, MixedStepsAlternateWhenRowsRunOut) {
  // prefill_rows 2: two running sequences leave no row for a prompt, so
  // the third prompt's prefill alternates with decodes instead.
  auto gen = makeGeneration({8}, {1, 2, 4}, 64, 4, /*prefillRows=*/2);
  EngineOptions options;
  options.mixed = true;
  EXPECT_EQ(firstEntries(entriesOfThree(gen, options, 3), 3),
            (std::vector<std::string>{"prefill@8", "decode@2", "prefill@8"}));
}
