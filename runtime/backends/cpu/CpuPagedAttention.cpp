// CPU kernel of PAGED_ATTENTION: each token's k and v stored in its row's
// cache blocks, then its attention over the row's positions up to its own.
#include "runtime/backends/cpu/CpuSupport.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace weft::runtime::cpu {

using steps::PagedAttentionShape;
using steps::pagedAttentionShape;

namespace {

/// The operands of one PAGED_ATTENTION step, its data checked.
class PagedAttention {
public:
  PagedAttention(const StepArgs &args, const PagedAttentionShape &p)
      : args(args), p(p), positions(args.inputs[5]), tokenSeq(args.inputs[6]),
        tables(args.inputs[7]) {}

  /// Refuses a token whose row, position or blocks are outside the cache
  /// before anything is written.
  Status checkPlaces() const;
  /// Phase 1: every token's k and v into its slot of the caches.
  void storeTokens();
  /// Phase 2: every token's attention over positions 0..p of its row.
  void attend();

private:
  int64_t rowOf(int64_t t) const {
    return loadInt(DType::I32, tokenSeq.data, t);
  }
  int64_t positionOf(int64_t t) const {
    return loadInt(DType::I64, positions.data, t);
  }
  /// The cache block that holds position `pos` of row `row`.
  int64_t blockOf(int64_t row, int64_t pos) const {
    return loadInt(DType::I32, tables.data,
                   row * p.blocksPerSeq + pos / p.blockSize);
  }
  /// Element offset of (position `pos` of row `row`, kv head `h`) in a cache
  /// of `dim` elements per head.
  int64_t slotOffset(int64_t row, int64_t pos, int64_t h, int64_t dim) const {
    return ((blockOf(row, pos) * p.blockSize + pos % p.blockSize) * p.hkv + h) *
           dim;
  }
  void attendOne(int64_t t, int64_t h, const float *q, float *scores,
                 float *scratch, float *acc);

  const StepArgs &args;
  const PagedAttentionShape &p;
  const InTensor &positions, &tokenSeq, &tables;
};

Status PagedAttention::checkPlaces() const {
  const int64_t capacity = p.blocksPerSeq * p.blockSize;
  // The furthest position each row reads: its blocks up to there are used.
  std::vector<int64_t> reach(p.rows, -1);
  for (int64_t t = 0; t < p.t; ++t) {
    int64_t row = rowOf(t);
    if (row == -1)
      continue;
    std::string token = "token " + std::to_string(t) + ": ";
    if (row < 0 || row >= p.rows)
      return errorStatus(
          token + "token_seq " + std::to_string(row) +
          " is neither -1 (padding) nor a row of block_tables (" +
          std::to_string(p.rows) + " rows)");
    int64_t pos = positionOf(t);
    if (pos < 0 || pos >= capacity)
      return errorStatus(token + "position " + std::to_string(pos) +
                         " is outside its row's " +
                         std::to_string(p.blocksPerSeq) + " blocks of " +
                         std::to_string(p.blockSize) + " tokens");
    reach[row] = std::max(reach[row], pos);
  }
  for (int64_t row = 0; row < p.rows; ++row)
    for (int64_t b = 0; reach[row] >= 0 && b <= reach[row] / p.blockSize; ++b) {
      int64_t block = blockOf(row, b * p.blockSize);
      if (block < 0 || block >= p.blocks)
        return errorStatus("block_tables[" + std::to_string(row) + "][" +
                           std::to_string(b) + "] = " + std::to_string(block) +
                           " is not a block of the KV cache (" +
                           std::to_string(p.blocks) + " blocks)");
    }
  return okStatus();
}

void PagedAttention::storeTokens() {
  // The caches are inputs that the step writes: STATE buffers, which the
  // executor allocates writable.
  const InTensor &k = args.inputs[1], &v = args.inputs[2];
  auto *kCache = const_cast<std::byte *>(args.inputs[3].data);
  auto *vCache = const_cast<std::byte *>(args.inputs[4].data);
  const size_t kSize = k.elementSize(), vSize = v.elementSize();
  const int64_t kRow = p.hkv * p.d, vRow = p.hkv * p.dv;
  for (int64_t t = 0; t < p.t; ++t) {
    int64_t row = rowOf(t);
    if (row < 0)
      continue;
    int64_t pos = positionOf(t);
    std::memcpy(kCache + slotOffset(row, pos, 0, p.d) * kSize,
                k.data + t * kRow * kSize, kRow * kSize);
    std::memcpy(vCache + slotOffset(row, pos, 0, p.dv) * vSize,
                v.data + t * vRow * vSize, vRow * vSize);
  }
}

/// a . b over n elements, in eight partial sums so that it vectorizes.
float dot(const float *a, const float *b, int64_t n) {
  float part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j)
      part[j] += a[i + j] * b[i + j];
  float sum = ((part[0] + part[1]) + (part[2] + part[3])) +
              ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; ++i)
    sum += a[i] * b[i];
  return sum;
}

/// `n` floats of a cache at element `offset`: in place when it is aligned
/// f32, else converted into `scratch`.
const float *cacheRow(const InTensor &cache, int64_t offset, int64_t n,
                      float *scratch) {
  const std::byte *src = cache.data + offset * cache.elementSize();
  if (cache.dtype == DType::F32 &&
      reinterpret_cast<uintptr_t>(src) % alignof(float) == 0)
    return reinterpret_cast<const float *>(src);
  toFloat(cache.dtype, src, scratch, n);
  return scratch;
}

void PagedAttention::attendOne(int64_t t, int64_t h, const float *q,
                               float *scores, float *scratch, float *acc) {
  const OutTensor &out = args.outputs[0];
  std::byte *o = out.data + (t * p.hq + h) * p.dv * out.elementSize();
  int64_t row = rowOf(t);
  if (row < 0) {
    std::memset(o, 0, p.dv * out.elementSize());
    return;
  }
  const InTensor &kCache = args.inputs[3], &vCache = args.inputs[4];
  const int64_t keys = positionOf(t) + 1, kvHead = h / (p.hq / p.hkv);
  const float *qh = q + (t * p.hq + h) * p.d;
  const float scale = static_cast<float>(p.scale);
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < keys; ++j) {
    const float *key =
        cacheRow(kCache, slotOffset(row, j, kvHead, p.d), p.d, scratch);
    scores[j] = dot(qh, key, p.d) * scale;
    max = std::max(max, scores[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < keys; ++j) {
    scores[j] = std::exp(scores[j] - max);
    sum += scores[j];
  }
  const float inv = static_cast<float>(1.0 / sum);
  std::fill(acc, acc + p.dv, 0.0f);
  for (int64_t j = 0; j < keys; ++j) {
    const float *value =
        cacheRow(vCache, slotOffset(row, j, kvHead, p.dv), p.dv, scratch);
    const float w = scores[j] * inv;
    for (int64_t i = 0; i < p.dv; ++i)
      acc[i] += w * value[i];
  }
  fromFloat(acc, out.dtype, o, p.dv);
}

void PagedAttention::attend() {
  FloatInput q(args.inputs[0]);
  int64_t longest = 0;
  for (int64_t t = 0; t < p.t; ++t)
    if (rowOf(t) >= 0)
      longest = std::max(longest, positionOf(t) + 1);
  parallelFor(args, p.t * p.hq, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(longest), scratch(std::max(p.d, p.dv)), acc(p.dv);
    for (int64_t i = begin; i < end; ++i)
      attendOne(i / p.hq, i % p.hq, q.data(), scores.data(), scratch.data(),
                acc.data());
  });
}

} // namespace

Status runPagedAttention(const StepArgs &args) {
  PagedAttentionShape p = *pagedAttentionShape(args);
  PagedAttention step(args, p);
  if (Status s = step.checkPlaces(); !s.ok())
    return s;
  step.storeTokens();
  step.attend();
  return okStatus();
}

} // namespace weft::runtime::cpu
