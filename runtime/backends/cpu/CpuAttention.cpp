// CPU kernel of ATTENTION: grouped-query, causal and masked dot products.
#include "runtime/backends/cpu/CpuSupport.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace weft::runtime::cpu {

namespace {

constexpr int64_t kRowBlock = 64;

struct AttentionShape {
  int64_t b = 0, hq = 0, hkv = 0, s = 0, t = 0, d = 0, dv = 0;
  double scale = 1;
  bool causal = false, hasMask = false;
  /// q, k, v and the output are [B, seq, heads, dim] rather than [B, heads,
  /// seq, dim] (the projections' own layout: no transposes around).
  bool seqMajor = false;

  /// Element offset of (batch, head, position 0) in a tensor of `heads`
  /// heads, `len` positions and `dim` elements per row.
  int64_t headOffset(int64_t batch, int64_t head, int64_t heads, int64_t len,
                     int64_t dim) const {
    return batch * heads * len * dim + head * (seqMajor ? dim : len * dim);
  }
  /// Elements between consecutive positions of one head.
  int64_t rowStride(int64_t heads, int64_t dim) const {
    return seqMajor ? heads * dim : dim;
  }
};

Status checkRank4(const StepArgs &args) {
  const char *names[] = {"q", "k", "v", "mask"};
  for (size_t i = 0; i < 3; ++i) {
    if (args.inputs[i].shape.size() != 4)
      return errorStatus(std::string(names[i]) + " has shape " +
                         shapeString(args.inputs[i].shape) +
                         ", expected rank 4");
  }
  for (size_t i = 0; i < args.inputs.size(); ++i)
    if (Status s = expectFloat(args.inputs[i].dtype, names[i]); !s.ok())
      return s;
  return expectFloat(args.outputs[0].dtype, "output");
}

Result<AttentionShape> attentionShape(const StepArgs &args) {
  if (Status s = checkRank4(args); !s.ok())
    return s;
  const Shape &q = args.inputs[0].shape, &k = args.inputs[1].shape,
              &v = args.inputs[2].shape;
  auto seqMajor = boolAttr(args.step, "seq_major");
  if (!seqMajor.ok())
    return seqMajor.status();
  // Heads and sequence dims by layout.
  const int hd = *seqMajor ? 2 : 1, sd = *seqMajor ? 1 : 2;
  AttentionShape a{q[0], q[hd], k[hd], q[sd], k[sd], q[3], v[3]};
  a.seqMajor = *seqMajor;
  if (k[0] != a.b || v[0] != a.b || v[hd] != a.hkv || v[sd] != a.t ||
      k[3] != a.d || a.hkv == 0 || a.hq % a.hkv != 0)
    return errorStatus(
        "shapes q " + shapeString(q) + ", k " + shapeString(k) + ", v " +
        shapeString(v) +
        (a.seqMajor
             ? " are not [B, S, Hq, D], [B, T, Hkv, D], [B, T, Hkv, Dv]"
             : " are not [B, Hq, S, D], [B, Hkv, T, D], [B, Hkv, T, Dv]") +
        " with Hq a multiple of Hkv");
  for (int64_t dim : {a.s, a.t, a.rowStride(a.hq, a.d), a.rowStride(a.hq, a.dv),
                      a.rowStride(a.hkv, a.d), a.rowStride(a.hkv, a.dv)})
    if (dim > INT_MAX)
      return errorStatus("a dim exceeds the BLAS limit");
  auto scale = floatAttr(args.step, "scale");
  auto causal = boolAttr(args.step, "causal");
  if (!scale.ok() || !causal.ok())
    return scale.ok() ? causal.status() : scale.status();
  a.scale = *scale;
  a.causal = *causal;
  a.hasMask = args.inputs.size() == 4;
  return a;
}

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

Status checkAttention(const StepArgs &args) {
  auto hasMask = boolAttr(args.step, "has_mask");
  if (!hasMask.ok())
    return hasMask.status();
  if (Status s = expectArity(args, *hasMask ? 4 : 3, 1); !s.ok())
    return s.withPrefix(*hasMask ? "has_mask: " : "");
  auto a = attentionShape(args);
  if (!a.ok())
    return a.status();
  Shape scoreShape{a->b, a->hq, a->s, a->t};
  if (a->hasMask && !broadcastsTo(args.inputs[3].shape, scoreShape))
    return errorStatus("mask of shape " + shapeString(args.inputs[3].shape) +
                       " does not broadcast to " + shapeString(scoreShape));
  return expectShape(args.outputs[0], a->seqMajor
                                          ? Shape{a->b, a->s, a->hq, a->dv}
                                          : Shape{a->b, a->hq, a->s, a->dv});
}

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
