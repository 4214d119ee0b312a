// Unit tests of the generation steps on the CPU: PAGED_ATTENTION against a
// dense causal attention over each sequence's history, and its checks.
#include "RuntimeTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

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

} // namespace
