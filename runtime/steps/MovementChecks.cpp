// Checks of the steps that move bytes: copy, transpose, slice, concat, tile,
// broadcast, trilu.
#include "runtime/steps/StepChecks.h"

#include <cstring>

namespace weft::runtime::steps {

namespace {

/// One input and one output of the same dtype.
Status checkUnaryMove(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 1); !s.ok())
    return s;
  return expectSameDType(args.inputs[0].dtype, args.outputs[0].dtype,
                         "input and output");
}

} // namespace

//===----------------------------------------------------------------------===//
// COPY
//===----------------------------------------------------------------------===//

Status checkCopy(const StepArgs &args) {
  if (Status s = checkUnaryMove(args); !s.ok())
    return s;
  if (args.inputs[0].numElements() != args.outputs[0].numElements())
    return errorStatus("input " + shapeString(args.inputs[0].shape) +
                       " and output " + shapeString(args.outputs[0].shape) +
                       " have different element counts");
  return okStatus();
}

//===----------------------------------------------------------------------===//
// TRANSPOSE
//===----------------------------------------------------------------------===//

Status checkTranspose(const StepArgs &args) {
  if (Status s = checkUnaryMove(args); !s.ok())
    return s;
  const Shape perm = toShape(args.step.transpose().perm());
  const Shape &in = args.inputs[0].shape;
  std::vector<bool> seen(in.size(), false);
  Shape out;
  for (int64_t p : perm) {
    if (perm.size() != in.size() || p < 0 ||
        p >= static_cast<int64_t>(in.size()) || seen[p])
      return errorStatus("perm " + shapeString(perm) +
                         " is not a permutation of the input's " +
                         std::to_string(in.size()) + " dims");
    seen[p] = true;
    out.push_back(in[p]);
  }
  if (perm.size() != in.size())
    return errorStatus("perm " + shapeString(perm) + " has " +
                       std::to_string(perm.size()) + " entries for rank " +
                       std::to_string(in.size()));
  return expectShape(args.outputs[0], out);
}

//===----------------------------------------------------------------------===//
// SLICE
//===----------------------------------------------------------------------===//

namespace {

/// Elements of one dim's slice; refuses bounds outside the normalized form.
Result<int64_t> sliceCount(int64_t d, int64_t s, int64_t e, int64_t st,
                           int64_t dim) {
  auto bad = [&](const char *need) {
    return errorStatus("dim " + std::to_string(d) + ": slice " +
                       std::to_string(s) + ":" + std::to_string(e) + ":" +
                       std::to_string(st) + " of size " + std::to_string(dim) +
                       " needs " + need);
  };
  if (st == 0)
    return bad("a non-zero step");
  if (st > 0) {
    if (!(0 <= s && s <= e && e <= dim))
      return bad("0 <= start <= end <= dim");
    return (e - s + st - 1) / st;
  }
  if (!(-1 <= e && e <= s && s <= dim - 1))
    return bad("-1 <= end <= start <= dim - 1");
  return (s - e + (-st) - 1) / (-st);
}

} // namespace

Result<SliceSpec> sliceSpec(const StepArgs &args) {
  SliceSpec spec;
  const artifact::SliceAttrs &attrs = args.step.slice();
  const Shape starts = toShape(attrs.starts()), ends = toShape(attrs.ends()),
              steps = toShape(attrs.steps());
  const Shape &in = args.inputs[0].shape;
  if (starts.size() != in.size() || ends.size() != in.size() ||
      steps.size() != in.size())
    return errorStatus("starts, ends and steps need one entry per dim (" +
                       std::to_string(in.size()) + ")");
  spec.starts = starts;
  spec.ends = ends;
  spec.steps = steps;
  for (size_t d = 0; d < in.size(); ++d) {
    auto n = sliceCount(d, spec.starts[d], spec.ends[d], spec.steps[d], in[d]);
    if (!n.ok())
      return n.status();
    spec.outShape.push_back(*n);
  }
  return spec;
}

Status checkSlice(const StepArgs &args) {
  if (Status s = checkUnaryMove(args); !s.ok())
    return s;
  auto spec = sliceSpec(args);
  if (!spec.ok())
    return spec.status();
  return expectShape(args.outputs[0], spec->outShape);
}

//===----------------------------------------------------------------------===//
// CONCAT
//===----------------------------------------------------------------------===//

Status checkConcat(const StepArgs &args) {
  if (args.inputs.empty() || args.outputs.size() != 1)
    return errorStatus("expects at least 1 input and 1 output");
  const OutTensor &out = args.outputs[0];
  auto axis = normalizeAxis(args.step.concat().axis(), out.rank());
  if (!axis.ok())
    return axis.status();
  if (args.inputs[0].rank() != out.rank())
    return errorStatus("input 0 has rank " +
                       std::to_string(args.inputs[0].rank()) + ", the output " +
                       std::to_string(out.rank()));
  Shape expected = args.inputs[0].shape;
  int64_t total = 0;
  for (size_t i = 0; i < args.inputs.size(); ++i) {
    const InTensor &in = args.inputs[i];
    Shape same = in.shape;
    if (in.rank() == out.rank())
      same[*axis] = expected[*axis];
    if (in.dtype != out.dtype || same != expected)
      return errorStatus("input " + std::to_string(i) + " (" +
                         dtypeName(in.dtype) + " " + shapeString(in.shape) +
                         ") does not match the others along every dim but " +
                         std::to_string(*axis) + ", or the output's dtype");
    total += in.shape[*axis];
  }
  expected[*axis] = total;
  return expectShape(out, expected);
}

//===----------------------------------------------------------------------===//
// TILE
//===----------------------------------------------------------------------===//

Status checkTile(const StepArgs &args) {
  if (Status s = checkUnaryMove(args); !s.ok())
    return s;
  const Shape repeats = toShape(args.step.tile().repeats());
  const Shape &in = args.inputs[0].shape;
  if (repeats.size() != in.size())
    return errorStatus("repeats " + shapeString(repeats) +
                       " needs one entry per dim (" +
                       std::to_string(in.size()) + ")");
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    if ((repeats)[d] < 0)
      return errorStatus("repeats " + shapeString(repeats) +
                         " holds a negative count");
    out.push_back(in[d] * (repeats)[d]);
  }
  return expectShape(args.outputs[0], out);
}

//===----------------------------------------------------------------------===//
// BROADCAST
//===----------------------------------------------------------------------===//

Status checkBroadcast(const StepArgs &args) {
  if (Status s = checkUnaryMove(args); !s.ok())
    return s;
  if (!broadcastsTo(args.inputs[0].shape, args.outputs[0].shape))
    return errorStatus("input " + shapeString(args.inputs[0].shape) +
                       " does not broadcast to the output's " +
                       shapeString(args.outputs[0].shape));
  return okStatus();
}

//===----------------------------------------------------------------------===//
// TRILU
//===----------------------------------------------------------------------===//

Status checkTrilu(const StepArgs &args) {
  if (Status s = checkUnaryMove(args); !s.ok())
    return s;
  if (args.inputs[0].rank() < 2)
    return errorStatus("input " + shapeString(args.inputs[0].shape) +
                       " needs rank >= 2");
  return expectShape(args.outputs[0], args.inputs[0].shape);
}

} // namespace weft::runtime::steps
