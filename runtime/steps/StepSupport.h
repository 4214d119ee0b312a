// The step library's helpers: the attrs check, operand checks, and the
// shape and stride arithmetic every backend shares.
#ifndef WEFT_RUNTIME_STEPS_STEPSUPPORT_H
#define WEFT_RUNTIME_STEPS_STEPSUPPORT_H

#include "runtime/artifact/StepAttrs.h"
#include "runtime/steps/StepArgs.h"

#include <utility>
#include <vector>

namespace weft::runtime::steps {

//===----------------------------------------------------------------------===//
// Attributes and checks
//===----------------------------------------------------------------------===//

/// Refuses a step without its kind's attrs message (StepAttrs.h). checkStep
/// runs it first, so the checks and kernels read the typed fields directly.
using runtime::expectAttrs;

/// Refuses other numbers of inputs and outputs.
Status expectArity(const StepArgs &args, size_t inputs, size_t outputs);
/// Refuses an output whose shape is not `expected`.
Status expectShape(const OutTensor &out, const Shape &expected,
                   const char *what = "output");
/// Refuses a tensor whose dtype is not a float type.
Status expectFloat(DType dtype, const char *what);
/// Refuses a tensor whose dtype is not an integer type (BOOL excluded).
Status expectIndex(DType dtype, const char *what);
/// Refuses differing dtypes.
Status expectSameDType(DType a, DType b, const char *what);
/// `axis` in [-rank, rank) made non-negative.
Result<int64_t> normalizeAxis(int64_t axis, int64_t rank);

//===----------------------------------------------------------------------===//
// Shapes and strides
//===----------------------------------------------------------------------===//

/// Product of dims [begin, end).
int64_t product(const Shape &shape, size_t begin, size_t end);
/// Row-major element strides.
Shape contiguousStrides(const Shape &shape);
/// Whether `in` broadcasts (numpy, right-aligned) to `out`.
bool broadcastsTo(const Shape &in, const Shape &out);
/// Element strides of `in` seen with `out`'s rank: 0 on broadcast dims.
Shape broadcastStrides(const Shape &in, const Shape &out);

} // namespace weft::runtime::steps

#endif // WEFT_RUNTIME_STEPS_STEPSUPPORT_H
