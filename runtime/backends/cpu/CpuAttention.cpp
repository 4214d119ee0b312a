// CPU kernel of ATTENTION: grouped-query, causal and masked dot products.
#include "runtime/backends/cpu/CpuSupport.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace weft::runtime::cpu {

namespace {

constexpr int64_t kRowBlock = 64;

/// One task: rows [s0, s1) of query head h of batch b.
class AttentionTask {
public:
  AttentionTask(const AttentionShape &a, const float *q, const float *k,
                const float *v, const float *mask, const Shape &maskStrides,
                float *out)
      : a(a), q(q), k(k), v(v), mask(mask), maskStrides(maskStrides), out(out) {
  }

  void run(int64_t b, int64_t h, int64_t s0, int64_t s1) {
    int64_t rows = s1 - s0;
    const int64_t qRow = a.rowStride(a.hq, a.d), oRow = a.rowStride(a.hq, a.dv);
    const int64_t kRow = a.rowStride(a.hkv, a.d),
                  vRow = a.rowStride(a.hkv, a.dv);
    float *o = out + a.headOffset(b, h, a.hq, a.s, a.dv) + s0 * oRow;
    // Keys past the last row's causal limit are masked for every row.
    int64_t keys = a.causal ? std::clamp<int64_t>(s1 + a.t - a.s, 0, a.t) : a.t;
    if (keys == 0) {
      for (int64_t r = 0; r < rows; ++r)
        std::fill(o + r * oRow, o + r * oRow + a.dv, 0.0f);
      return;
    }
    int64_t kvHead = h / (a.hq / a.hkv);
    const float *qp = q + a.headOffset(b, h, a.hq, a.s, a.d) + s0 * qRow;
    const float *kp = k + a.headOffset(b, kvHead, a.hkv, a.t, a.d);
    const float *vp = v + a.headOffset(b, kvHead, a.hkv, a.t, a.dv);
    scores.assign(rows * keys, 0.0f);
    if (a.d > 0)
      sgemm(false, true, rows, keys, a.d, static_cast<float>(a.scale), qp, qRow,
            kp, kRow, 0.0f, scores.data(), keys);
    for (int64_t r = 0; r < rows; ++r)
      softmaxRow(b, h, s0 + r, scores.data() + r * keys, keys);
    if (a.dv > 0)
      sgemm(false, false, rows, a.dv, keys, 1.0f, scores.data(), keys, vp, vRow,
            0.0f, o, oRow);
  }

private:
  /// Masks, then normalizes one row of scores in place; a row with every
  /// key masked becomes zeros.
  void softmaxRow(int64_t b, int64_t h, int64_t i, float *row, int64_t keys) {
    const float inf = std::numeric_limits<float>::infinity();
    if (mask) {
      const float *m =
          mask + b * maskStrides[0] + h * maskStrides[1] + i * maskStrides[2];
      for (int64_t j = 0; j < keys; ++j)
        row[j] += m[j * maskStrides[3]];
    }
    if (a.causal)
      for (int64_t j = std::max<int64_t>(i + a.t - a.s + 1, 0); j < keys; ++j)
        row[j] = -inf;
    float max = -inf;
    for (int64_t j = 0; j < keys; ++j)
      max = std::max(max, row[j]);
    if (max == -inf) {
      std::fill(row, row + keys, 0.0f);
      return;
    }
    double sum = 0;
    for (int64_t j = 0; j < keys; ++j) {
      row[j] = std::exp(row[j] - max);
      sum += row[j];
    }
    float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < keys; ++j)
      row[j] *= inv;
  }

  const AttentionShape &a;
  const float *q, *k, *v, *mask;
  const Shape &maskStrides;
  float *out;
  std::vector<float> scores;
};

} // namespace

Status runAttention(const StepArgs &args) {
  useSingleThreadedBlas();
  AttentionShape a = *attentionShape(args);
  FloatInput q(args.inputs[0]), k(args.inputs[1]), v(args.inputs[2]);
  std::unique_ptr<FloatInput> mask;
  Shape maskStrides(4, 0);
  if (a.hasMask) {
    mask = std::make_unique<FloatInput>(args.inputs[3]);
    maskStrides =
        broadcastStrides(args.inputs[3].shape, Shape{a.b, a.hq, a.s, a.t});
  }
  FloatOutput out(args.outputs[0]);
  int64_t blocks = (a.s + kRowBlock - 1) / kRowBlock;
  parallelFor(args, a.b * a.hq * blocks, 1, [&](int64_t begin, int64_t end) {
    AttentionTask task(a, q.data(), k.data(), v.data(),
                       mask ? mask->data() : nullptr, maskStrides, out.data());
    for (int64_t t = begin; t < end; ++t) {
      int64_t s0 = (t % blocks) * kRowBlock;
      int64_t bh = t / blocks;
      task.run(bh / a.hq, bh % a.hq, s0, std::min(s0 + kRowBlock, a.s));
    }
  });
  out.commit();
  return okStatus();
}

} // namespace weft::runtime::cpu
