// Checks of LAYER_NORM, RMS_NORM, SOFTMAX and ROTARY steps.
#include "runtime/steps/StepChecks.h"

#include <cmath>

namespace weft::runtime::steps {

/// The normalized axis of a norm or softmax step (NormAttrs or
/// SoftmaxAttrs).
Result<int64_t> normAxis(const StepArgs &args) {
  int64_t axis = args.step.kind() == artifact::Step::SOFTMAX
                     ? args.step.softmax().axis()
                     : args.step.norm().axis();
  return normalizeAxis(axis, args.inputs[0].rank());
}

namespace {

/// Checks x, scale (and bias) of a norm: floats, broadcasting to x.
Status checkNorm(const StepArgs &args, bool allowBias) {
  bool hasBias = args.step.norm().has_bias();
  if (hasBias && !allowBias)
    return errorStatus("has_bias is set but RMS_NORM has no bias");
  if (Status s = expectArity(args, hasBias ? 3 : 2, 1); !s.ok())
    return s.withPrefix(hasBias ? "has_bias: " : "");
  const char *names[] = {"input", "scale", "bias"};
  const Shape &x = args.inputs[0].shape;
  for (size_t i = 0; i < args.inputs.size(); ++i) {
    if (Status s = expectFloat(args.inputs[i].dtype, names[i]); !s.ok())
      return s;
    if (i > 0 && !broadcastsTo(args.inputs[i].shape, x))
      return errorStatus(std::string(names[i]) + " of shape " +
                         shapeString(args.inputs[i].shape) +
                         " does not broadcast to the input's " +
                         shapeString(x));
  }
  auto axis = normAxis(args);
  if (!axis.ok())
    return axis.status();
  if (Status s = expectFloat(args.outputs[0].dtype, "output"); !s.ok())
    return s;
  return expectShape(args.outputs[0], x);
}

} // namespace

Status checkLayerNorm(const StepArgs &args) { return checkNorm(args, true); }
Status checkRmsNorm(const StepArgs &args) { return checkNorm(args, false); }

//===----------------------------------------------------------------------===//
// SOFTMAX
//===----------------------------------------------------------------------===//

Status checkSoftmax(const StepArgs &args) {
  if (Status s = expectArity(args, 1, 1); !s.ok())
    return s;
  if (Status s = expectFloat(args.inputs[0].dtype, "input"); !s.ok())
    return s;
  if (Status s = expectFloat(args.outputs[0].dtype, "output"); !s.ok())
    return s;
  if (auto axis = normAxis(args); !axis.ok())
    return axis.status();
  return expectShape(args.outputs[0], args.inputs[0].shape);
}

//===----------------------------------------------------------------------===//
// ROTARY
//===----------------------------------------------------------------------===//

Status checkRotary(const StepArgs &args) {
  if (Status s = expectArity(args, 3, 1); !s.ok())
    return s;
  const char *names[] = {"input", "cos", "sin"};
  for (size_t i = 0; i < 3; ++i)
    if (Status s = expectFloat(args.inputs[i].dtype, names[i]); !s.ok())
      return s;
  const Shape &x = args.inputs[0].shape, &cos = args.inputs[1].shape,
              &sin = args.inputs[2].shape;
  if (x.empty() || cos.empty() || sin.empty())
    return errorStatus("input, cos and sin need rank >= 1");
  int64_t r = cos.back();
  if (sin.back() != r || r % 2 != 0 || r > x.back())
    return errorStatus("rotary dim " + std::to_string(r) + " (cos " +
                       shapeString(cos) + ", sin " + shapeString(sin) +
                       ") must be even, shared by sin and at most the "
                       "input's last dim " +
                       std::to_string(x.back()));
  Shape rotated = x;
  rotated.back() = r;
  if (!broadcastsTo(cos, rotated) || !broadcastsTo(sin, rotated))
    return errorStatus("cos " + shapeString(cos) + " and sin " +
                       shapeString(sin) + " do not broadcast to " +
                       shapeString(rotated));
  if (Status s = expectFloat(args.outputs[0].dtype, "output"); !s.ok())
    return s;
  return expectShape(args.outputs[0], x);
}

} // namespace weft::runtime::steps
