// Checks of ATTENTION steps and the shapes their kernels read.
#include "runtime/steps/StepChecks.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

namespace weft::runtime::steps {

namespace {

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

} // namespace

Result<AttentionShape> attentionShape(const StepArgs &args) {
  if (Status s = checkRank4(args); !s.ok())
    return s;
  const Shape &q = args.inputs[0].shape, &k = args.inputs[1].shape,
              &v = args.inputs[2].shape;
  const artifact::AttentionAttrs &attrs = args.step.attention();
  const bool seqMajor = attrs.seq_major();
  // Heads and sequence dims by layout.
  const int hd = seqMajor ? 2 : 1, sd = seqMajor ? 1 : 2;
  AttentionShape a{q[0], q[hd], k[hd], q[sd], k[sd], q[3], v[3]};
  a.seqMajor = seqMajor;
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
  a.scale = attrs.scale();
  a.causal = attrs.causal();
  a.hasMask = args.inputs.size() == 4;
  return a;
}

Status checkAttention(const StepArgs &args) {
  bool hasMask = args.step.attention().has_mask();
  if (Status s = expectArity(args, hasMask ? 4 : 3, 1); !s.ok())
    return s.withPrefix(hasMask ? "has_mask: " : "");
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

} // namespace weft::runtime::steps
