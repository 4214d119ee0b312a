// CPU kernel of SAMPLE: one token per row of logits, the largest logit or a
// Gumbel-max draw over the tokens that top_k and top_p keep.
#include "runtime/backends/cpu/CpuSupport.h"
#include "runtime/steps/Sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

namespace weft::runtime::cpu {

using steps::SampleShape;
using steps::sampleShape;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// The sampling parameters of one row (params [R, 3], seeds [R, 2]).
struct RowParams {
  float temperature = 0;
  int64_t topK = 0; // 0: all
  float topP = 1;
  uint64_t seed = 0, position = 0;
};

std::string shortFloat(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", v);
  return text;
}

Result<RowParams> rowParams(const StepArgs &args, int64_t r) {
  const InTensor &params = args.inputs[1], &seeds = args.inputs[2];
  RowParams row;
  row.temperature =
      static_cast<float>(loadDouble(DType::F32, params.data, 3 * r));
  double topK = loadDouble(DType::F32, params.data, 3 * r + 1);
  row.topP = static_cast<float>(loadDouble(DType::F32, params.data, 3 * r + 2));
  row.seed = static_cast<uint64_t>(loadInt(DType::I64, seeds.data, 2 * r));
  row.position =
      static_cast<uint64_t>(loadInt(DType::I64, seeds.data, 2 * r + 1));
  std::string where = "row " + std::to_string(r) + ": ";
  if (std::isnan(row.temperature))
    return errorStatus(where + "temperature is NaN");
  if (!(topK >= 0) || topK != std::floor(topK))
    return errorStatus(where + "top_k " + shortFloat(topK) +
                       " is not a whole number >= 0");
  if (std::isnan(row.topP))
    return errorStatus(where + "top_p is NaN");
  row.topK = topK >= 9.0e18 ? 0 : static_cast<int64_t>(topK);
  return row;
}

/// The first index of the largest value.
int64_t firstArgmax(const float *x, int64_t n) {
  int64_t best = 0;
  for (int64_t v = 1; v < n; ++v)
    if (x[v] > x[best])
      best = v;
  return best;
}

/// The smallest z that top_k keeps: the k-th largest (ties with it kept
/// too), or -inf when k keeps all.
float topKThreshold(const std::vector<float> &z, int64_t k,
                    std::vector<float> &work) {
  if (k <= 0 || k >= static_cast<int64_t>(z.size()))
    return -kInf;
  work.assign(z.begin(), z.end());
  std::nth_element(work.begin(), work.begin() + (k - 1), work.end(),
                   std::greater<float>());
  return work[k - 1];
}

/// The smallest z that top_p keeps among those at least `floor`: t, the
/// largest value whose mass {z >= t} of the kept softmax reaches top_p.
/// Sorts the kept values only as far as the mass needs.
float topPThreshold(const std::vector<float> &z, float floor, float topP,
                    std::vector<float> &work) {
  if (topP >= 1)
    return floor;
  work.clear();
  for (float x : z)
    if (x >= floor)
      work.push_back(x);
  float max = *std::max_element(work.begin(), work.end());
  if (max == -kInf)
    return floor;
  double total = 0;
  for (float x : work)
    total += std::exp(static_cast<double>(x) - max);
  const double target = static_cast<double>(topP) * total;
  double mass = 0;
  size_t done = 0, window = 64;
  while (done < work.size()) {
    size_t end = std::min(work.size(), done + window);
    std::partial_sort(work.begin() + done, work.begin() + end, work.end(),
                      std::greater<float>());
    for (size_t i = done; i < end; ++i) {
      mass += std::exp(static_cast<double>(work[i]) - max);
      if (mass >= target)
        return work[i];
    }
    done = end;
    window *= 2;
  }
  return floor; // rounding kept the mass short of top_p: all kept
}

/// Samples one row of z = logits / temperature: the kept token with the
/// largest z + Gumbel noise, the first on a tie.
int64_t sampleRow(const std::vector<float> &z, const RowParams &row,
                  std::vector<float> &work) {
  float cutoff = topKThreshold(z, row.topK, work);
  cutoff = topPThreshold(z, cutoff, row.topP, work);
  int64_t best = -1;
  float bestScore = -kInf;
  for (int64_t v = 0; v < static_cast<int64_t>(z.size()); ++v) {
    if (!(z[v] >= cutoff))
      continue;
    float score = z[v] + steps::sampleGumbel(row.seed, row.position,
                                             static_cast<uint64_t>(v));
    if (best < 0 || score > bestScore) {
      best = v;
      bestScore = score;
    }
  }
  return best < 0 ? 0 : best;
}

} // namespace

Status runSample(const StepArgs &args) {
  SampleShape shape = *sampleShape(args);
  std::vector<RowParams> rows;
  for (int64_t r = 0; r < shape.rows; ++r) {
    auto row = rowParams(args, r);
    if (!row.ok())
      return row.status();
    rows.push_back(*row);
  }
  const InTensor &logits = args.inputs[0];
  const size_t elemSize = logits.elementSize();
  // The first NaN logit of each row (-1: none).
  std::vector<int64_t> nanAt(shape.rows, -1);
  parallelFor(args, shape.rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> z(shape.vocab), work;
    for (int64_t r = begin; r < end; ++r) {
      toFloat(logits.dtype, logits.data + r * shape.vocab * elemSize, z.data(),
              shape.vocab);
      auto nan = std::find_if(z.begin(), z.end(),
                              [](float x) { return std::isnan(x); });
      if (nan != z.end()) {
        nanAt[r] = nan - z.begin();
        continue;
      }
      int64_t id;
      if (rows[r].temperature <= 0) {
        id = firstArgmax(z.data(), shape.vocab);
      } else {
        for (float &x : z)
          x /= rows[r].temperature;
        id = sampleRow(z, rows[r], work);
      }
      storeInt(DType::I32, args.outputs[0].data, r, id);
    }
  });
  for (int64_t r = 0; r < shape.rows; ++r)
    if (nanAt[r] >= 0)
      return errorStatus("row " + std::to_string(r) + ": logit " +
                         std::to_string(nanAt[r]) + " is NaN");
  return okStatus();
}

} // namespace weft::runtime::cpu
