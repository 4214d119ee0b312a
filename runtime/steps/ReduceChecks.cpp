// Checks of REDUCE and CUMSUM steps and the plan their kernels read.
#include "runtime/steps/StepChecks.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace weft::runtime::steps {

Result<ReducePlan> reducePlan(const StepArgs &args) {
  ReducePlan p;
  const artifact::ReduceAttrs &attrs = args.step.reduce();
  int64_t kind = attrs.kind();
  Shape axes = toShape(attrs.axes());
  bool keep = attrs.keepdims();
  if (kind < Sum || kind > Prod)
    return errorStatus("reduce kind " + std::to_string(kind) +
                       " is not 0 (sum) to 4 (prod)");
  p.kind = static_cast<ReduceKind>(kind);
  const Shape &in = args.inputs[0].shape;
  p.reduced.assign(in.size(), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i];
    if (a < 0 || a >= static_cast<int64_t>(in.size()) ||
        (i > 0 && a <= axes[i - 1]))
      return errorStatus("axes " + shapeString(axes) +
                         " must be sorted, unique and in [0, " +
                         std::to_string(in.size()) + ")");
    p.reduced[a] = true;
  }
  for (size_t d = 0; d < in.size(); ++d)
    if (!p.reduced[d] || keep)
      p.outShape.push_back(p.reduced[d] ? 1 : in[d]);
  return p;
}

Status checkReduce(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 1); !s.ok())
    return s;
  auto p = reducePlan(args);
  if (!p.ok())
    return p.status();
  if (Status s = expectSameDType(args.inputs[0].dtype, args.outputs[0].dtype,
                                 "input and output");
      !s.ok())
    return s;
  return expectShape(args.outputs[0], p->outShape);
}

//===----------------------------------------------------------------------===//
// CUMSUM
//===----------------------------------------------------------------------===//

Status checkCumsum(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 1); !s.ok())
    return s;
  if (auto a = normalizeAxis(args.step.cumsum().axis(), args.inputs[0].rank());
      !a.ok())
    return a.status();
  if (Status s = expectSameDType(args.inputs[0].dtype, args.outputs[0].dtype,
                                 "input and output");
      !s.ok())
    return s;
  return expectShape(args.outputs[0], args.inputs[0].shape);
}

} // namespace weft::runtime::steps
