// Checks of the generation steps: PAGED_ATTENTION (attention over a paged KV
// cache) and SAMPLE (one token per row of logits).
#include "runtime/steps/StepChecks.h"

#include <climits>

namespace weft::runtime::steps {

namespace {

/// f32, f16 or bf16: the types the generation kernels compute in.
Status expectFloat16Or32(DType dtype, const char *what) {
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    return errorStatus(std::string(what) + " has dtype " + dtypeName(dtype) +
                       ", expected f32, f16 or bf16");
  return okStatus();
}

Status expectDType(DType dtype, DType want, const char *what) {
  if (dtype != want)
    return errorStatus(std::string(what) + " has dtype " + dtypeName(dtype) +
                       ", expected " + dtypeName(want));
  return okStatus();
}

Status expectInputShape(const InTensor &in, const Shape &expected,
                        const char *what) {
  if (in.shape != expected)
    return errorStatus(std::string(what) + " has shape " +
                       shapeString(in.shape) + ", expected " +
                       shapeString(expected));
  return okStatus();
}

} // namespace

//===----------------------------------------------------------------------===//
// PAGED_ATTENTION
//===----------------------------------------------------------------------===//

Result<PagedAttentionShape> pagedAttentionShape(const StepArgs &args) {
  if (Status s = expectArity(args, 8, 1); !s.ok())
    return s;
  const char *floatNames[] = {"q", "k", "v", "k_cache", "v_cache"};
  for (size_t i = 0; i < 5; ++i) {
    if (Status s = expectFloat16Or32(args.inputs[i].dtype, floatNames[i]);
        !s.ok())
      return s;
    if (args.inputs[i].shape.size() != 4)
      return errorStatus(std::string(floatNames[i]) + " has shape " +
                         shapeString(args.inputs[i].shape) +
                         ", expected rank 4");
  }
  if (Status s = expectFloat16Or32(args.outputs[0].dtype, "output"); !s.ok())
    return s;
  if (Status s = expectDType(args.inputs[3].dtype, args.inputs[1].dtype,
                             "k_cache (k's dtype)");
      !s.ok())
    return s;
  if (Status s = expectDType(args.inputs[4].dtype, args.inputs[2].dtype,
                             "v_cache (v's dtype)");
      !s.ok())
    return s;
  const Shape &q = args.inputs[0].shape, &k = args.inputs[1].shape,
              &v = args.inputs[2].shape, &kc = args.inputs[3].shape,
              &vc = args.inputs[4].shape;
  PagedAttentionShape p;
  p.t = q[1];
  p.hq = q[2];
  p.d = q[3];
  p.hkv = k[2];
  p.dv = v[3];
  p.blocks = kc[0];
  p.blockSize = args.step.paged_attention().block_size();
  p.scale = args.step.paged_attention().scale();
  if (p.blockSize <= 0)
    return errorStatus("block_size " + std::to_string(p.blockSize) +
                       " is not positive");
  if (q[0] != 1 || k != Shape{1, p.t, p.hkv, p.d} ||
      v != Shape{1, p.t, p.hkv, p.dv} || p.hkv == 0 || p.hq % p.hkv != 0)
    return errorStatus("shapes q " + shapeString(q) + ", k " + shapeString(k) +
                       ", v " + shapeString(v) +
                       " are not [1, T, Hq, D], [1, T, Hkv, D], [1, T, Hkv, "
                       "Dv] with Hq a multiple of Hkv");
  if (kc != Shape{p.blocks, p.blockSize, p.hkv, p.d} ||
      vc != Shape{p.blocks, p.blockSize, p.hkv, p.dv})
    return errorStatus(
        "caches k_cache " + shapeString(kc) + ", v_cache " + shapeString(vc) +
        " are not [blocks, " + std::to_string(p.blockSize) + ", " +
        std::to_string(p.hkv) + ", " + std::to_string(p.d) + "] and [blocks, " +
        std::to_string(p.blockSize) + ", " + std::to_string(p.hkv) + ", " +
        std::to_string(p.dv) + "] (block_size, k's and v's heads and dims)");
  const InTensor &positions = args.inputs[5], &tokenSeq = args.inputs[6],
                 &tables = args.inputs[7];
  if (Status s = expectDType(positions.dtype, DType::I64, "positions"); !s.ok())
    return s;
  if (Status s = expectInputShape(positions, {1, p.t}, "positions"); !s.ok())
    return s;
  if (Status s = expectDType(tokenSeq.dtype, DType::I32, "token_seq"); !s.ok())
    return s;
  if (Status s = expectInputShape(tokenSeq, {p.t}, "token_seq"); !s.ok())
    return s;
  if (Status s = expectDType(tables.dtype, DType::I32, "block_tables"); !s.ok())
    return s;
  if (tables.shape.size() != 2)
    return errorStatus("block_tables has shape " + shapeString(tables.shape) +
                       ", expected [rows, blocks_per_seq]");
  p.rows = tables.shape[0];
  p.blocksPerSeq = tables.shape[1];
  if (p.blocksPerSeq > INT64_MAX / p.blockSize)
    return errorStatus("blocks_per_seq " + std::to_string(p.blocksPerSeq) +
                       " x block_size " + std::to_string(p.blockSize) +
                       " overflows");
  if (Status s = expectShape(args.outputs[0], {1, p.t, p.hq, p.dv}); !s.ok())
    return s;
  return p;
}

Status checkPagedAttention(const StepArgs &args) {
  return pagedAttentionShape(args).status();
}

//===----------------------------------------------------------------------===//
// SAMPLE
//===----------------------------------------------------------------------===//

Result<SampleShape> sampleShape(const StepArgs &args) {
  if (Status s = expectArity(args, 3, 1); !s.ok())
    return s;
  const InTensor &logits = args.inputs[0], &params = args.inputs[1],
                 &seeds = args.inputs[2];
  if (Status s = expectFloat16Or32(logits.dtype, "logits"); !s.ok())
    return s;
  const Shape &l = logits.shape;
  if (!(l.size() == 2 || (l.size() == 3 && l[0] == 1)))
    return errorStatus("logits have shape " + shapeString(l) +
                       ", expected [R, V] or [1, R, V]");
  SampleShape shape{l[l.size() - 2], l.back()};
  if (shape.vocab <= 0 || shape.vocab > INT32_MAX)
    return errorStatus("logits have shape " + shapeString(l) +
                       ": the vocabulary must hold 1 to 2^31 - 1 tokens");
  if (Status s = expectDType(params.dtype, DType::F32, "params"); !s.ok())
    return s;
  if (Status s = expectInputShape(params, {shape.rows, 3}, "params"); !s.ok())
    return s;
  if (Status s = expectDType(seeds.dtype, DType::I64, "seeds"); !s.ok())
    return s;
  if (Status s = expectInputShape(seeds, {shape.rows, 2}, "seeds"); !s.ok())
    return s;
  if (Status s = expectDType(args.outputs[0].dtype, DType::I32, "output");
      !s.ok())
    return s;
  if (Status s = expectShape(args.outputs[0], {shape.rows}); !s.ok())
    return s;
  return shape;
}

Status checkSample(const StepArgs &args) { return sampleShape(args).status(); }

} // namespace weft::runtime::steps
