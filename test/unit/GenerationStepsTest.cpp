// Unit tests of the generation steps on the CPU: PAGED_ATTENTION against a
// dense causal attention over each sequence's history, SAMPLE against
// argmax and softmax frequencies, and the checks of both.
#include "runtime/steps/Sampling.h"

#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <set>

using namespace weft::runtime;
using namespace weft::runtime::test;
using weft::artifact::Step;

namespace {

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

//===----------------------------------------------------------------------===//
// PAGED_ATTENTION
//===----------------------------------------------------------------------===//

constexpr int64_t kHq = 6, kHkv = 2, kD = 8, kDv = 6, kBlockSize = 4,
                  kBlocks = 16, kBlocksPerSeq = 5, kRows = 4;
constexpr double kScale = 0.35;

/// One token of a call: its sequence (-1: padding) and its q, k, v.
struct Token {
  int seq = -1;
  std::vector<float> q, k, v; // [Hq, D], [Hkv, D], [Hkv, Dv]
};

/// A sequence: its row of the block table and its k, v history by position.
struct Sequence {
  int row = 0;
  std::vector<std::vector<float>> k, v;
};

/// The caches and block tables that persist across the calls of a test.
struct PagedState {
  explicit PagedState(DType dtype) : dtype(dtype) {
    kCache = zeros(dtype, {kBlocks, kBlockSize, kHkv, kD});
    vCache = zeros(dtype, {kBlocks, kBlockSize, kHkv, kDv});
  }
  static HostTensor zeros(DType dtype, Shape shape) {
    HostTensor t{dtype, shape, {}};
    t.bytes.resize(numElements(shape) * dtypeSize(dtype));
    return t;
  }

  DType dtype;
  HostTensor kCache, vCache;
  std::vector<int32_t> tables = std::vector<int32_t>(kRows * kBlocksPerSeq, -1);
};

HostTensor floatTensor(DType dtype, Shape shape, const std::vector<float> &v) {
  if (dtype == DType::BF16)
    return bf16(std::move(shape), v);
  if (dtype == DType::F16)
    return f16(std::move(shape), v);
  return f32(std::move(shape), v);
}

Step pagedStep(int64_t blockSize = kBlockSize) {
  Step step = makeStep(Step::PAGED_ATTENTION, {{"block_size", blockSize}},
                       {{"scale", kScale}});
  for (uint32_t i = 0; i < 8; ++i)
    step.add_inputs(i);
  step.add_outputs(8);
  return step;
}

/// Runs PAGED_ATTENTION on `tokens` at `positions`, the caches in `state`
/// written in place; the output [1, T, Hq, Dv], or the kernel's error.
Result<HostTensor> runPaged(PagedState &state, const std::vector<Token> &tokens,
                            const std::vector<int64_t> &positions,
                            unsigned threads = 3) {
  int64_t t = tokens.size();
  std::vector<float> q, k, v;
  std::vector<int32_t> seqs;
  for (const Token &tok : tokens) {
    q.insert(q.end(), tok.q.begin(), tok.q.end());
    k.insert(k.end(), tok.k.begin(), tok.k.end());
    v.insert(v.end(), tok.v.begin(), tok.v.end());
    seqs.push_back(tok.seq);
  }
  std::vector<HostTensor> inputs = {
      floatTensor(state.dtype, {1, t, kHq, kD}, q),
      floatTensor(state.dtype, {1, t, kHkv, kD}, k),
      floatTensor(state.dtype, {1, t, kHkv, kDv}, v),
      {},
      {},
      i64({1, t}, positions),
      i32({t}, seqs),
      i32({kRows, kBlocksPerSeq}, state.tables)};
  std::vector<InTensor> ins;
  for (const HostTensor &in : inputs)
    ins.push_back(in.view());
  ins[3] = state.kCache.view();
  ins[4] = state.vCache.view();
  HostTensor out = PagedState::zeros(state.dtype, {1, t, kHq, kDv});
  std::vector<OutTensor> outs = {
      OutTensor{out.dtype, out.shape, out.bytes.data()}};
  Step step = pagedStep();
  ThreadPool pool(threads);
  cpu::StepArgs args{step, ins, outs, &pool};
  if (Status s = cpu::runStep(args); !s.ok())
    return s;
  return out;
}

/// Rounds values as a tensor of `dtype` holds them.
std::vector<float> rounded(DType dtype, const std::vector<float> &v) {
  return floats(floatTensor(dtype, {static_cast<int64_t>(v.size())}, v));
}

/// Dense causal attention of query `q` over positions 0..pos of `seq`.
std::vector<float> denseAttention(const std::vector<float> &q,
                                  const Sequence &seq, int64_t pos) {
  std::vector<float> out(kHq * kDv);
  for (int64_t h = 0; h < kHq; ++h) {
    int64_t kv = h / (kHq / kHkv);
    std::vector<double> w(pos + 1);
    for (int64_t j = 0; j <= pos; ++j) {
      double dot = 0;
      for (int64_t i = 0; i < kD; ++i)
        dot += double(q[h * kD + i]) * seq.k[j][kv * kD + i];
      w[j] = dot * kScale;
    }
    double max = *std::max_element(w.begin(), w.end()), sum = 0;
    for (double &x : w)
      sum += (x = std::exp(x - max));
    for (int64_t i = 0; i < kDv; ++i) {
      double acc = 0;
      for (int64_t j = 0; j <= pos; ++j)
        acc += w[j] / sum * seq.v[j][kv * kDv + i];
      out[h * kDv + i] = static_cast<float>(acc);
    }
  }
  return out;
}

class PagedAttentionTest : public ::testing::TestWithParam<DType> {
protected:
  std::vector<float> random(size_t n) {
    std::uniform_real_distribution<float> dist(-1, 1);
    std::vector<float> v(n);
    for (float &x : v)
      x = dist(rng);
    return v;
  }
  Token token(int seq) {
    DType dtype = GetParam();
    return Token{seq, rounded(dtype, random(kHq * kD)),
                 rounded(dtype, random(kHkv * kD)),
                 rounded(dtype, random(kHkv * kDv))};
  }
  Token padding() { return token(-1); }

  /// Checks one call's output against dense attention over each token's
  /// sequence, after adding the call's k and v to the histories.
  void expectDense(const HostTensor &out, const std::vector<Token> &tokens,
                   const std::vector<int64_t> &positions,
                   const std::vector<int> &seqOfToken, float tol) {
    std::vector<float> got = floats(out);
    for (size_t t = 0; t < tokens.size(); ++t) {
      std::vector<float> want(kHq * kDv, 0.0f);
      if (seqOfToken[t] >= 0)
        want = denseAttention(tokens[t].q, seqs[seqOfToken[t]], positions[t]);
      std::vector<float> row(got.begin() + t * kHq * kDv,
                             got.begin() + (t + 1) * kHq * kDv);
      SCOPED_TRACE("token " + std::to_string(t));
      expectNear(row, want, tol);
    }
  }

  std::mt19937 rng{1234};
  std::vector<Sequence> seqs;
};

TEST_P(PagedAttentionTest, MatchesDenseCausalAttentionAcrossCalls) {
  DType dtype = GetParam();
  float tol = dtype == DType::F32 ? 1e-5f : 1e-2f;
  PagedState state(dtype);
  // Three sequences on rows 2, 0 and 1 (row 3 unused), over shuffled
  // blocks; table entries past a sequence's length stay -1.
  const std::vector<int> lengths = {7, 3, 10}, rows = {2, 0, 1};
  std::vector<int32_t> blockIds(kBlocks);
  std::iota(blockIds.begin(), blockIds.end(), 0);
  std::shuffle(blockIds.begin(), blockIds.end(), rng);
  size_t nextBlock = 0;
  for (size_t s = 0; s < lengths.size(); ++s) {
    seqs.push_back(Sequence{rows[s], {}, {}});
    int64_t needed = (lengths[s] + 1 + kBlockSize - 1) / kBlockSize;
    for (int64_t b = 0; b < needed; ++b)
      state.tables[rows[s] * kBlocksPerSeq + b] = blockIds[nextBlock++];
  }

  // Prefill: the sequences' tokens packed one after another, padding
  // between and after them.
  std::vector<Token> tokens;
  std::vector<int64_t> positions;
  std::vector<int> seqOfToken;
  auto addPadding = [&] {
    tokens.push_back(padding());
    positions.push_back(0);
    seqOfToken.push_back(-1);
  };
  for (size_t s = 0; s < lengths.size(); ++s) {
    for (int p = 0; p < lengths[s]; ++p) {
      Token t = token(seqs[s].row);
      seqs[s].k.push_back(t.k);
      seqs[s].v.push_back(t.v);
      tokens.push_back(std::move(t));
      positions.push_back(p);
      seqOfToken.push_back(s);
    }
    if (s == 0)
      addPadding();
  }
  addPadding();
  auto prefill = runPaged(state, tokens, positions);
  ASSERT_TRUE(prefill.ok()) << prefill.message();
  expectDense(*prefill, tokens, positions, seqOfToken, tol);

  // Decode: one new token per sequence, in another order; the earlier
  // positions come from the cache alone.
  tokens.clear();
  positions.clear();
  seqOfToken.clear();
  for (int s : {1, 2, 0}) {
    Token t = token(seqs[s].row);
    positions.push_back(seqs[s].k.size());
    seqs[s].k.push_back(t.k);
    seqs[s].v.push_back(t.v);
    tokens.push_back(std::move(t));
    seqOfToken.push_back(s);
  }
  auto decode = runPaged(state, tokens, positions);
  ASSERT_TRUE(decode.ok()) << decode.message();
  expectDense(*decode, tokens, positions, seqOfToken, tol);

  // The cache holds every sequence's history at its blocks' slots.
  std::vector<float> kCache = floats(state.kCache);
  for (const Sequence &seq : seqs)
    for (size_t p = 0; p < seq.k.size(); ++p) {
      int64_t block = state.tables[seq.row * kBlocksPerSeq + p / kBlockSize];
      int64_t at = (block * kBlockSize + p % kBlockSize) * kHkv * kD;
      std::vector<float> slot(kCache.begin() + at,
                              kCache.begin() + at + kHkv * kD);
      EXPECT_EQ(slot, seq.k[p]) << "row " << seq.row << " position " << p;
    }
}

INSTANTIATE_TEST_SUITE_P(DTypes, PagedAttentionTest,
                         ::testing::Values(DType::F32, DType::BF16),
                         [](const auto &info) {
                           return dtypeName(info.param);
                         });

TEST(PagedAttention, RefusesTokensOutsideTheCache) {
  PagedState state(DType::F32);
  state.tables[0] = 3;
  state.tables[1] = kBlocks; // past the cache
  Token tok{0, std::vector<float>(kHq * kD, 0.5f),
            std::vector<float>(kHkv * kD, 1),
            std::vector<float>(kHkv * kDv, 2)};
  struct Case {
    int seq;
    int64_t position;
    const char *error;
  };
  const Case cases[] = {
      {0, kBlocksPerSeq * kBlockSize,
       "token 0: position 20 is outside its row's 5 blocks of 4 tokens"},
      {0, -1, "token 0: position -1 is outside its row's 5 blocks"},
      {kRows, 0,
       "token 0: token_seq 4 is neither -1 (padding) nor a row of "
       "block_tables (4 rows)"},
      {-2, 0, "token 0: token_seq -2 is neither -1"},
      {0, kBlockSize,
       "block_tables[0][1] = 16 is not a block of the KV cache (16 blocks)"},
      {1, 0, "block_tables[1][0] = -1 is not a block of the KV cache"},
  };
  for (const Case &c : cases) {
    tok.seq = c.seq;
    auto out = runPaged(state, {tok}, {c.position});
    ASSERT_FALSE(out.ok()) << c.error;
    EXPECT_TRUE(contains(out.message(), c.error)) << out.message();
  }
  // Nothing was written by the refused calls.
  for (float x : floats(state.kCache))
    ASSERT_EQ(x, 0.0f);
  // Padding tokens read no table and give zeros.
  tok.seq = -1;
  auto out = runPaged(state, {tok}, {1000});
  ASSERT_TRUE(out.ok()) << out.message();
  for (float x : floats(*out))
    EXPECT_EQ(x, 0.0f);
}

/// The operands of a valid PAGED_ATTENTION of T = 2 for the check tests.
std::vector<HostTensor> pagedOperands() {
  auto zeros = [](DType dtype, Shape shape) {
    return PagedState::zeros(dtype, shape);
  };
  return {zeros(DType::F32, {1, 2, kHq, kD}),
          zeros(DType::F32, {1, 2, kHkv, kD}),
          zeros(DType::F32, {1, 2, kHkv, kDv}),
          zeros(DType::F32, {kBlocks, kBlockSize, kHkv, kD}),
          zeros(DType::F32, {kBlocks, kBlockSize, kHkv, kDv}),
          i64({1, 2}, {0, 0}),
          i32({2}, {-1, -1}),
          i32({kRows, kBlocksPerSeq},
              std::vector<int32_t>(kRows * kBlocksPerSeq, 0))};
}

TEST(PagedAttention, ChecksOperandsAndAttributes) {
  const Shape outShape{1, 2, kHq, kDv};
  ASSERT_TRUE(
      runKernel(pagedStep(), pagedOperands(), {{DType::F32, outShape}}).ok());
  struct Case {
    const char *error;
    std::function<void(std::vector<HostTensor> &, Step &, Shape &)> edit;
  };
  auto setDType = [](HostTensor &t, DType dtype) {
    t = PagedState::zeros(dtype, t.shape);
  };
  auto setShape = [](HostTensor &t, Shape shape) {
    t = PagedState::zeros(t.dtype, shape);
  };
  const Case cases[] = {
      {"expects 8 inputs and 1 outputs, has 7 and 1",
       [](auto &in, Step &step, Shape &) {
         in.pop_back();
         step.mutable_inputs()->RemoveLast();
       }},
      {"block_size 0 is not positive",
       [](auto &, Step &step, Shape &) {
         step.mutable_paged_attention()->set_block_size(0);
       }},
      {"q has dtype f64, expected f32, f16 or bf16",
       [&](auto &in, Step &, Shape &) { setDType(in[0], DType::F64); }},
      {"k_cache (k's dtype) has dtype bf16, expected f32",
       [&](auto &in, Step &, Shape &) { setDType(in[3], DType::BF16); }},
      {"v_cache (v's dtype) has dtype f16, expected f32",
       [&](auto &in, Step &, Shape &) { setDType(in[4], DType::F16); }},
      {"v has shape [2, 6], expected rank 4",
       [&](auto &in, Step &, Shape &) {
         setShape(in[2], {2, 6});
       }},
      {"are not [1, T, Hq, D], [1, T, Hkv, D], [1, T, Hkv, Dv] with Hq a "
       "multiple of Hkv",
       [&](auto &in, Step &, Shape &) {
         setShape(in[1], {1, 2, 4, kD});
         setShape(in[2], {1, 2, 4, kDv});
         setShape(in[3], {kBlocks, kBlockSize, 4, kD});
         setShape(in[4], {kBlocks, kBlockSize, 4, kDv});
       }},
      {"caches k_cache [16, 2, 2, 8], v_cache [16, 4, 2, 6] are not [blocks, "
       "4, 2, 8] and [blocks, 4, 2, 6]",
       [&](auto &in, Step &, Shape &) {
         setShape(in[3], {kBlocks, 2, kHkv, kD});
       }},
      {"caches k_cache [16, 4, 2, 8], v_cache [15, 4, 2, 6]",
       [&](auto &in, Step &, Shape &) {
         setShape(in[4], {kBlocks - 1, kBlockSize, kHkv, kDv});
       }},
      {"positions has dtype i32, expected i64",
       [&](auto &in, Step &, Shape &) { setDType(in[5], DType::I32); }},
      {"positions has shape [2], expected [1, 2]",
       [&](auto &in, Step &, Shape &) { setShape(in[5], {2}); }},
      {"token_seq has dtype i64, expected i32",
       [&](auto &in, Step &, Shape &) { setDType(in[6], DType::I64); }},
      {"token_seq has shape [1, 2], expected [2]",
       [&](auto &in, Step &, Shape &) {
         setShape(in[6], {1, 2});
       }},
      {"block_tables has dtype i64, expected i32",
       [&](auto &in, Step &, Shape &) { setDType(in[7], DType::I64); }},
      {"block_tables has shape [20], expected [rows, blocks_per_seq]",
       [&](auto &in, Step &, Shape &) { setShape(in[7], {20}); }},
      {"blocks_per_seq 4611686018427387904 x block_size 4 overflows",
       [&](auto &in, Step &, Shape &) {
         in[7].shape = {0, int64_t{1} << 62};
         in[7].bytes.clear();
       }},
      {"output has shape [1, 2, 6, 8], expected [1, 2, 6, 6]",
       [](auto &, Step &, Shape &out) {
         out = {1, 2, kHq, kD};
       }},
      {"PAGED_ATTENTION step 'test' carries NormAttrs, expected "
       "PagedAttentionAttrs",
       [](auto &, Step &step, Shape &) { step.mutable_norm(); }},
  };
  for (const Case &c : cases) {
    std::vector<HostTensor> in = pagedOperands();
    Step step = pagedStep();
    Shape out = outShape;
    c.edit(in, step, out);
    auto result = runKernel(step, in, {{DType::F32, out}});
    ASSERT_FALSE(result.ok()) << c.error;
    EXPECT_TRUE(contains(result.message(), c.error)) << result.message();
  }
}

//===----------------------------------------------------------------------===//
// SAMPLE
//===----------------------------------------------------------------------===//

/// One row to sample: its logits, temperature, top_k, top_p, seed and
/// position.
struct SampleRow {
  std::vector<float> logits;
  float temperature = 1, topK = 0, topP = 1;
  int64_t seed = 0, position = 0;
};

Step sampleStep() {
  Step step = makeStep(Step::SAMPLE);
  for (uint32_t i = 0; i < 3; ++i)
    step.add_inputs(i);
  step.add_outputs(3);
  return step;
}

std::vector<HostTensor> sampleOperands(const std::vector<SampleRow> &rows,
                                       DType dtype = DType::F32) {
  int64_t r = rows.size(), v = rows.empty() ? 1 : rows[0].logits.size();
  std::vector<float> logits, params;
  std::vector<int64_t> seeds;
  for (const SampleRow &row : rows) {
    logits.insert(logits.end(), row.logits.begin(), row.logits.end());
    params.insert(params.end(), {row.temperature, row.topK, row.topP});
    seeds.insert(seeds.end(), {row.seed, row.position});
  }
  return {floatTensor(dtype, {r, v}, logits), f32({r, 3}, params),
          i64({r, 2}, seeds)};
}

/// The ids SAMPLE picks for `rows`, or the kernel's error.
Result<std::vector<int64_t>> sample(const std::vector<SampleRow> &rows,
                                    DType dtype = DType::F32) {
  auto out = runKernel(sampleStep(), sampleOperands(rows, dtype),
                       {{DType::I32, {static_cast<int64_t>(rows.size())}}});
  if (!out.ok())
    return out.status();
  return ints((*out)[0]);
}

std::vector<float> randomLogits(std::mt19937 &rng, int64_t vocab) {
  std::normal_distribution<float> dist(0, 3);
  std::vector<float> v(vocab);
  for (float &x : v)
    x = dist(rng);
  return v;
}

int64_t argmax(const std::vector<float> &v) {
  return std::max_element(v.begin(), v.end()) - v.begin();
}

TEST(Sample, GreedyIsTheFirstArgmax) {
  std::mt19937 rng(7);
  std::vector<SampleRow> rows;
  for (float temperature : {0.0f, -1.0f, 0.0f})
    rows.push_back(SampleRow{randomLogits(rng, 1000), temperature});
  rows[2].logits[17] = rows[2].logits[900] = 100; // a tie: the first wins
  for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    auto ids = sample(rows, dtype);
    ASSERT_TRUE(ids.ok()) << ids.message();
    EXPECT_EQ(*ids, (std::vector<int64_t>{argmax(rows[0].logits),
                                          argmax(rows[1].logits), 17}));
  }
}

TEST(Sample, TopKOfOneIsTheArgmax) {
  std::mt19937 rng(8);
  std::vector<SampleRow> rows;
  for (int64_t r = 0; r < 8; ++r)
    rows.push_back(SampleRow{randomLogits(rng, 5000), 1.5f, 1, 1, r, 3 * r});
  auto ids = sample(rows);
  ASSERT_TRUE(ids.ok()) << ids.message();
  for (size_t r = 0; r < rows.size(); ++r)
    EXPECT_EQ((*ids)[r], argmax(rows[r].logits)) << "row " << r;
}

TEST(Sample, ASeedPicksTheSameTokenInAnyBatch) {
  std::mt19937 rng(9);
  std::vector<SampleRow> rows;
  for (int64_t r = 0; r < 6; ++r)
    rows.push_back(SampleRow{randomLogits(rng, 2000), 2.0f, 0, 1, 42 + r, 5});
  rows[1].topK = 50;
  rows[2].topP = 0.9f;
  auto first = sample(rows);
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_EQ(*sample(rows), *first);
  // Different seeds pick different tokens from the same flat logits.
  std::vector<SampleRow> flat(6, SampleRow{std::vector<float>(2000, 0.0f)});
  for (int64_t r = 0; r < 6; ++r)
    flat[r].seed = r;
  auto spread = sample(flat);
  ASSERT_TRUE(spread.ok()) << spread.message();
  EXPECT_GT(std::set<int64_t>(spread->begin(), spread->end()).size(), 1u);
  // Each row alone, or among other rows, gives its token.
  for (size_t r = 0; r < rows.size(); ++r) {
    auto alone = sample({rows[r]});
    ASSERT_TRUE(alone.ok()) << alone.message();
    EXPECT_EQ((*alone)[0], (*first)[r]) << "row " << r;
    std::vector<SampleRow> others(4, SampleRow{randomLogits(rng, 2000), 0.7f});
    others[1].seed = 99;
    others[3].topK = 3;
    others[2] = rows[r];
    auto among = sample(others);
    ASSERT_TRUE(among.ok()) << among.message();
    EXPECT_EQ((*among)[2], (*first)[r]) << "row " << r;
  }
}

TEST(Sample, ATinyTopPKeepsTheTopToken) {
  std::mt19937 rng(10);
  std::vector<SampleRow> rows;
  for (int64_t r = 0; r < 64; ++r)
    rows.push_back(SampleRow{randomLogits(rng, 300), 5.0f, 0, 1e-6f, r, r});
  auto ids = sample(rows);
  ASSERT_TRUE(ids.ok()) << ids.message();
  for (size_t r = 0; r < rows.size(); ++r)
    EXPECT_EQ((*ids)[r], argmax(rows[r].logits)) << "row " << r;
}

/// Frequencies of each token over `draws` rows like `row` at positions
/// 0, 1, ...
std::vector<double> frequencies(SampleRow row, int64_t draws) {
  std::vector<SampleRow> rows;
  for (int64_t i = 0; i < draws; ++i) {
    row.position = i;
    rows.push_back(row);
  }
  auto ids = sample(rows);
  EXPECT_TRUE(ids.ok()) << ids.message();
  std::vector<double> freq(row.logits.size(), 0.0);
  if (ids.ok())
    for (int64_t id : *ids)
      freq[id] += 1.0 / draws;
  return freq;
}

/// softmax(logits / temperature) over the tokens in `kept`, 0 elsewhere.
std::vector<double> softmaxOver(const std::vector<float> &logits,
                                float temperature,
                                const std::vector<bool> &kept) {
  std::vector<double> p(logits.size(), 0.0);
  double sum = 0;
  for (size_t v = 0; v < logits.size(); ++v)
    if (kept[v])
      sum += p[v] = std::exp(double(logits[v]) / temperature);
  for (double &x : p)
    x /= sum;
  return p;
}

TEST(Sample, DrawsFollowTheSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
  const float temperature = 0.8f;
  const int64_t draws = 20000;
  std::vector<double> freq =
      frequencies(SampleRow{logits, temperature, 0, 1, 2024}, draws);
  std::vector<double> want =
      softmaxOver(logits, temperature, std::vector<bool>(5, true));
  for (size_t v = 0; v < logits.size(); ++v)
    EXPECT_NEAR(freq[v], want[v], 0.01) << "token " << v;
  // top_k 2 keeps tokens 1 and 4, renormalized.
  freq = frequencies(SampleRow{logits, temperature, 2, 1, 2024}, draws);
  want = softmaxOver(logits, temperature, {false, true, false, false, true});
  for (size_t v = 0; v < logits.size(); ++v)
    EXPECT_NEAR(freq[v], want[v], 0.01) << "token " << v;
  EXPECT_EQ(freq[0] + freq[2] + freq[3], 0.0);
  // top_p: token 1 holds 0.50 of the mass, with token 4 0.77: 0.6 keeps
  // those two.
  freq = frequencies(SampleRow{logits, temperature, 0, 0.6f, 2024}, draws);
  for (size_t v = 0; v < logits.size(); ++v)
    EXPECT_NEAR(freq[v], want[v], 0.01) << "token " << v;
  // A top_k that splits a tie keeps every token of the tie.
  freq = frequencies(SampleRow{{3, 0, 3, 3, 1}, 1, 2, 1, 5}, draws);
  want = softmaxOver({3, 0, 3, 3, 1}, 1, {true, false, true, true, false});
  for (size_t v = 0; v < 5; ++v)
    EXPECT_NEAR(freq[v], want[v], 0.01) << "token " << v;
}

TEST(Sample, UsesTheSharedGumbelNoise) {
  // Flat logits: the pick is the argmax of the noise alone.
  SampleRow row{std::vector<float>(50, 0.0f), 1, 0, 1, 77, 9};
  auto ids = sample({row});
  ASSERT_TRUE(ids.ok()) << ids.message();
  int64_t best = 0;
  for (uint64_t v = 1; v < 50; ++v)
    if (steps::sampleGumbel(77, 9, v) > steps::sampleGumbel(77, 9, best))
      best = v;
  EXPECT_EQ((*ids)[0], best);
}

TEST(Sample, ChecksOperandsAndParameters) {
  SampleRow row{{1, 2, 3}, 1, 0, 1, 1, 0};
  auto ok = runKernel(sampleStep(), sampleOperands({row}), {{DType::I32, {1}}});
  ASSERT_TRUE(ok.ok()) << ok.message();
  // [1, R, V] logits are taken too.
  std::vector<HostTensor> in = sampleOperands({row});
  in[0].shape = {1, 1, 3};
  ASSERT_TRUE(runKernel(sampleStep(), in, {{DType::I32, {1}}}).ok());
  struct Case {
    const char *error;
    std::function<void(std::vector<HostTensor> &, Step &, Shape &)> edit;
  };
  const Case cases[] = {
      {"expects 3 inputs and 1 outputs, has 2 and 1",
       [](auto &in, Step &step, Shape &) {
         in.pop_back();
         step.mutable_inputs()->RemoveLast();
       }},
      {"logits have shape [2, 1, 3], expected [R, V] or [1, R, V]",
       [](auto &in, Step &, Shape &) {
         in[0].shape = {2, 1, 3};
       }},
      {"logits have shape [1, 0]: the vocabulary must hold 1 to 2^31 - 1 "
       "tokens",
       [](auto &in, Step &, Shape &) {
         in[0].shape = {1, 0};
         in[0].bytes.clear();
       }},
      {"logits has dtype i32, expected f32, f16 or bf16",
       [](auto &in, Step &, Shape &) { in[0].dtype = DType::I32; }},
      {"params has dtype f64, expected f32",
       [](auto &in, Step &, Shape &) {
         in[1] = makeTensor(DType::F64, {1, 3}, std::vector<double>{1, 0, 1});
       }},
      {"params has shape [3], expected [1, 3]",
       [](auto &in, Step &, Shape &) { in[1].shape = {3}; }},
      {"seeds has dtype i32, expected i64",
       [](auto &in, Step &, Shape &) {
         in[2] = i32({1, 2}, {1, 0});
       }},
      {"seeds has shape [1, 1], expected [1, 2]",
       [](auto &in, Step &, Shape &) {
         in[2] = i64({1, 1}, {1});
       }},
      {"output has shape [2], expected [1]",
       [](auto &, Step &, Shape &out) { out = {2}; }},
      {"SAMPLE step 'test' takes no attributes but carries "
       "PagedAttentionAttrs",
       [](auto &, Step &step, Shape &) { step.mutable_paged_attention(); }},
  };
  for (const Case &c : cases) {
    std::vector<HostTensor> in = sampleOperands({row});
    Step step = sampleStep();
    Shape out = {1};
    c.edit(in, step, out);
    auto result = runKernel(step, in, {{DType::I32, out}});
    ASSERT_FALSE(result.ok()) << c.error;
    EXPECT_TRUE(contains(result.message(), c.error)) << result.message();
  }
  auto wrongOut =
      runKernel(sampleStep(), sampleOperands({row}), {{DType::I64, {1}}});
  ASSERT_FALSE(wrongOut.ok());
  EXPECT_TRUE(contains(wrongOut.message(), "output has dtype i64, expected "
                                           "i32"))
      << wrongOut.message();

  // Data errors name the row.
  const float nan = std::nanf("");
  struct DataCase {
    SampleRow row;
    const char *error;
  };
  const DataCase data[] = {
      {SampleRow{{1, 2, 3}, nan}, "row 1: temperature is NaN"},
      {SampleRow{{1, 2, 3}, 1, -1},
       "row 1: top_k -1 is not a whole number >= 0"},
      {SampleRow{{1, 2, 3}, 1, 1.5f}, "row 1: top_k 1.5 is not a whole"},
      {SampleRow{{1, 2, 3}, 1, 0, nan}, "row 1: top_p is NaN"},
      {SampleRow{{1, nan, 3}, 1}, "row 1: logit 1 is NaN"},
  };
  for (const DataCase &c : data) {
    auto ids = sample({row, c.row});
    ASSERT_FALSE(ids.ok()) << c.error;
    EXPECT_TRUE(contains(ids.message(), c.error)) << ids.message();
  }
}

} // namespace
