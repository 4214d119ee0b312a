// Checks of the steps that index: EMBEDDING, GATHER, GATHER_ND and
// GATHER_ELEMENTS.
#include "runtime/steps/StepChecks.h"

#include <cstring>

namespace weft::runtime::steps {

namespace {

/// Data and integer indices in, one output of the data's dtype.
Status checkIndexed(const StepArgs &args, const char *dataName) {
  if (Status s = expectArity(args, 2, 1); !s.ok())
    return s;
  if (Status s = expectIndex(args.inputs[1].dtype, "indices"); !s.ok())
    return s;
  return expectSameDType(args.inputs[0].dtype, args.outputs[0].dtype, dataName);
}

Shape concatShapes(std::initializer_list<Shape> parts) {
  Shape out;
  for (const Shape &p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

Shape sub(const Shape &s, size_t begin, size_t end) {
  return Shape(s.begin() + begin, s.begin() + end);
}

} // namespace

//===----------------------------------------------------------------------===//
// EMBEDDING
//===----------------------------------------------------------------------===//

Status checkEmbedding(const StepArgs &args) {
  if (Status s = checkIndexed(args, "table and output"); !s.ok())
    return s;
  const Shape &table = args.inputs[0].shape;
  if (table.empty())
    return errorStatus("table needs rank >= 1");
  if (int64_t start = args.step.embedding().vocab_start(); start < 0)
    return errorStatus("vocab_start " + std::to_string(start) + " is negative");
  return expectShape(
      args.outputs[0],
      concatShapes({args.inputs[1].shape, sub(table, 1, table.size())}));
}

//===----------------------------------------------------------------------===//
// GATHER
//===----------------------------------------------------------------------===//

Result<int64_t> gatherAxis(const StepArgs &args) {
  return normalizeAxis(args.step.gather().axis(), args.inputs[0].rank());
}

Status checkGather(const StepArgs &args) {
  if (Status s = checkIndexed(args, "data and output"); !s.ok())
    return s;
  auto axis = gatherAxis(args);
  if (!axis.ok())
    return axis.status();
  const Shape &data = args.inputs[0].shape;
  return expectShape(args.outputs[0],
                     concatShapes({sub(data, 0, *axis), args.inputs[1].shape,
                                   sub(data, *axis + 1, data.size())}));
}

//===----------------------------------------------------------------------===//
// GATHER_ND
//===----------------------------------------------------------------------===//

Result<GatherNdShape> gatherNdShape(const StepArgs &args) {
  GatherNdShape g;
  g.batchDims = args.step.gather().batch_dims();
  const Shape &data = args.inputs[0].shape, &idx = args.inputs[1].shape;
  int64_t b = g.batchDims;
  if (idx.empty() || b < 0 || b >= static_cast<int64_t>(idx.size()) ||
      b > static_cast<int64_t>(data.size()))
    return errorStatus("batch_dims " + std::to_string(b) +
                       " does not fit data " + shapeString(data) +
                       " and indices " + shapeString(idx));
  g.depth = idx.back();
  if (g.depth < 0 || b + g.depth > static_cast<int64_t>(data.size()) ||
      sub(data, 0, b) != sub(idx, 0, b))
    return errorStatus("indices " + shapeString(idx) + " do not index data " +
                       shapeString(data) + " with batch_dims " +
                       std::to_string(b));
  g.out = concatShapes(
      {sub(idx, 0, idx.size() - 1), sub(data, b + g.depth, data.size())});
  return g;
}

Status checkGatherNd(const StepArgs &args) {
  if (Status s = checkIndexed(args, "data and output"); !s.ok())
    return s;
  auto g = gatherNdShape(args);
  if (!g.ok())
    return g.status();
  return expectShape(args.outputs[0], g->out);
}

//===----------------------------------------------------------------------===//
// GATHER_ELEMENTS
//===----------------------------------------------------------------------===//

Status checkGatherElements(const StepArgs &args) {
  if (Status s = checkIndexed(args, "data and output"); !s.ok())
    return s;
  auto axis = gatherAxis(args);
  if (!axis.ok())
    return axis.status();
  const Shape &data = args.inputs[0].shape, &idx = args.inputs[1].shape;
  bool fits = data.size() == idx.size();
  for (size_t d = 0; fits && d < data.size(); ++d)
    fits = static_cast<int64_t>(d) == *axis || idx[d] <= data[d];
  if (!fits)
    return errorStatus("indices " + shapeString(idx) + " do not fit data " +
                       shapeString(data) +
                       " (same rank, no larger off the axis)");
  return expectShape(args.outputs[0], idx);
}

} // namespace weft::runtime::steps
