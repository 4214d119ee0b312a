// CPU kernels of LAYER_NORM, RMS_NORM, SOFTMAX and ROTARY.
#include "runtime/backends/cpu/CpuSupport.h"

#include <cmath>

namespace weft::runtime::cpu {

namespace {

float mulFloats(float x, float y) { return x * y; }
float addFloats(float x, float y) { return x + y; }

/// Normalizes each row of `inner` elements: (x - mean) / sqrt(var + eps),
/// or x / sqrt(mean(x^2) + eps) when `rms`; then applies scale and bias.
Status runNorm(const StepArgs &args, bool rms) {
  const InTensor &xt = args.inputs[0];
  int64_t axis = *steps::normAxis(args);
  double eps = args.step.norm().epsilon();
  int64_t inner = product(xt.shape, axis, xt.shape.size());
  int64_t rows = inner ? xt.numElements() / inner : 0;
  FloatInput x(xt);
  FloatOutput out(args.outputs[0]);
  const float *xp = x.data();
  float *y = out.data();
  parallelFor(args, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *row = xp + r * inner;
      double mean = 0, var = 0;
      if (!rms) {
        for (int64_t i = 0; i < inner; ++i)
          mean += row[i];
        mean /= inner;
      }
      for (int64_t i = 0; i < inner; ++i)
        var += (row[i] - mean) * (row[i] - mean);
      double inv = 1.0 / std::sqrt(var / inner + eps);
      for (int64_t i = 0; i < inner; ++i)
        y[r * inner + i] = static_cast<float>((row[i] - mean) * inv);
    }
  });
  FloatInput scale(args.inputs[1]);
  applyBroadcast(y, xt.shape, scale.data(), args.inputs[1].shape, mulFloats);
  if (args.inputs.size() == 3) {
    FloatInput bias(args.inputs[2]);
    applyBroadcast(y, xt.shape, bias.data(), args.inputs[2].shape, addFloats);
  }
  out.commit();
  return okStatus();
}

} // namespace

Status runLayerNorm(const StepArgs &args) { return runNorm(args, false); }
Status runRmsNorm(const StepArgs &args) { return runNorm(args, true); }

//===----------------------------------------------------------------------===//
// SOFTMAX
//===----------------------------------------------------------------------===//

Status runSoftmax(const StepArgs &args) {
  const InTensor &xt = args.inputs[0];
  int64_t axis = *steps::normAxis(args);
  int64_t len = xt.shape[axis];
  int64_t inner = product(xt.shape, axis + 1, xt.shape.size());
  int64_t lines = len && inner ? xt.numElements() / len : 0;
  FloatInput x(xt);
  FloatOutput out(args.outputs[0]);
  const float *xp = x.data();
  float *y = out.data();
  parallelFor(args, lines, 64, [&](int64_t begin, int64_t end) {
    for (int64_t l = begin; l < end; ++l) {
      int64_t base = (l / inner) * len * inner + l % inner;
      float max = -INFINITY;
      for (int64_t i = 0; i < len; ++i)
        max = std::max(max, xp[base + i * inner]);
      if (!std::isfinite(max)) // like the numpy reference: shift by 0
        max = 0;
      double sum = 0;
      for (int64_t i = 0; i < len; ++i) {
        float e = std::exp(xp[base + i * inner] - max);
        y[base + i * inner] = e;
        sum += e;
      }
      for (int64_t i = 0; i < len; ++i)
        y[base + i * inner] = static_cast<float>(y[base + i * inner] / sum);
    }
  });
  out.commit();
  return okStatus();
}

Status runRotary(const StepArgs &args) {
  const Shape &xs = args.inputs[0].shape;
  bool interleaved = args.step.rotary().interleaved();
  int64_t width = xs.back(), r = args.inputs[1].shape.back(), half = r / 2;
  Shape rowShape(xs.begin(), xs.end() - 1), rotated = xs;
  rotated.back() = r;
  auto rowStrides = [&](const Shape &s) {
    Shape st = broadcastStrides(s, rotated);
    st.pop_back();
    return st;
  };
  std::vector<Shape> strides{rowStrides(args.inputs[1].shape),
                             rowStrides(args.inputs[2].shape)};
  FloatInput x(args.inputs[0]), cos(args.inputs[1]), sin(args.inputs[2]);
  FloatOutput out(args.outputs[0]);
  int64_t rows = width ? args.inputs[0].numElements() / width : 0;
  parallelFor(args, rows, 64, [&](int64_t begin, int64_t end) {
    StridedWalker walker(rowShape, strides);
    walker.seek(begin);
    for (int64_t row = begin; row < end; ++row, walker.next()) {
      const float *xr = x.data() + row * width;
      const float *c = cos.data() + walker.offset(0);
      const float *s = sin.data() + walker.offset(1);
      float *o = out.data() + row * width;
      for (int64_t i = 0; i < r; ++i) {
        float rot = interleaved ? (i % 2 ? xr[i - 1] : -xr[i + 1])
                                : (i < half ? -xr[i + half] : xr[i - half]);
        o[i] = xr[i] * c[i] + rot * s[i];
      }
      std::copy(xr + r, xr + width, o + r);
    }
  });
  out.commit();
  return okStatus();
}

} // namespace weft::runtime::cpu
