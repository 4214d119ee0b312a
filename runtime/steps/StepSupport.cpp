// The step library's helpers: operand checks and the shape and stride
// arithmetic every backend shares.
#include "runtime/steps/StepSupport.h"

namespace weft::runtime::steps {

//===----------------------------------------------------------------------===//
// Attributes and checks
//===----------------------------------------------------------------------===//

Status expectArity(const StepArgs &args, size_t inputs, size_t outputs) {
  if (args.inputs.size() != inputs || args.outputs.size() != outputs)
    return errorStatus("expects " + std::to_string(inputs) + " inputs and " +
                       std::to_string(outputs) + " outputs, has " +
                       std::to_string(args.inputs.size()) + " and " +
                       std::to_string(args.outputs.size()));
  return okStatus();
}

Status expectShape(const OutTensor &out, const Shape &expected,
                   const char *what) {
  if (out.shape != expected)
    return errorStatus(std::string(what) + " has shape " +
                       shapeString(out.shape) + ", expected " +
                       shapeString(expected));
  return okStatus();
}

Status expectFloat(DType dtype, const char *what) {
  if (!isFloatDType(dtype))
    return errorStatus(std::string(what) + " has dtype " + dtypeName(dtype) +
                       ", expected a float type");
  return okStatus();
}

Status expectIndex(DType dtype, const char *what) {
  if (!isIntegerDType(dtype) || dtype == DType::BOOL)
    return errorStatus(std::string(what) + " has dtype " + dtypeName(dtype) +
                       ", expected an integer type");
  return okStatus();
}

Status expectSameDType(DType a, DType b, const char *what) {
  if (a != b)
    return errorStatus(std::string(what) + ": dtypes " + dtypeName(a) +
                       " and " + dtypeName(b) + " differ");
  return okStatus();
}

Result<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return errorStatus("axis " + std::to_string(axis) +
                       " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

int64_t product(const Shape &shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i)
    n *= shape[i];
  return n;
}

Shape contiguousStrides(const Shape &shape) {
  Shape strides(shape.size(), 1);
  for (size_t d = shape.size(); d > 1; --d)
    strides[d - 2] = strides[d - 1] * shape[d - 1];
  return strides;
}

//===----------------------------------------------------------------------===//
// Broadcasting
//===----------------------------------------------------------------------===//

bool broadcastsTo(const Shape &in, const Shape &out) {
  if (in.size() > out.size())
    return false;
  size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    if (in[d] != 1 && in[d] != out[lead + d])
      return false;
  return true;
}

Shape broadcastStrides(const Shape &in, const Shape &out) {
  Shape inStrides = contiguousStrides(in);
  Shape strides(out.size(), 0);
  size_t lead = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    strides[lead + d] = (in[d] == 1 && out[lead + d] != 1) ? 0 : inStrides[d];
  return strides;
}

} // namespace weft::runtime::steps
