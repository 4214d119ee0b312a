// The fit of weft-calibrate's NCCL all-reduce timings to the cost model's
// collective constants (compiler/cost/CostModel.cpp, docs/planner.md), and
// the collectives.nvlink section of the calibration file it writes or
// replaces. Plain C++ without CUDA, so that the unit tests check it on
// synthetic timings against the file's parser.
#ifndef WEFT_TOOLS_WEFT_CALIBRATE_COLLECTIVEFIT_H
#define WEFT_TOOLS_WEFT_CALIBRATE_COLLECTIVEFIT_H

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace weft::calibrate {

/// One timed all-reduce size: each rank's payload, seconds per call.
struct AllReduceSample {
  double bytes = 0, seconds = 0;
};

/// The bytes each rank sends over its link for an all-reduce of `bytes`:
/// 2(n-1)/n of the payload (a reduce-scatter, then an all-gather).
inline double allReduceBusBytes(int ranks, double bytes) {
  return bytes * 2.0 * double(ranks - 1) / double(ranks);
}

/// NCCL's bus bandwidth of an all-reduce (nccl-tests' busbw), GB/s: the
/// algorithm bandwidth (bytes / time) times 2(n-1)/n.
inline double allReduceBusGbPerS(int ranks, double bytes, double seconds) {
  return allReduceBusBytes(ranks, bytes) / seconds / 1e9;
}

/// The cost model's line for one GPU count: t = fixed + bus bytes / busbw.
struct AlphaBeta {
  double fixedUs = 0;   // alpha: the time of an empty all-reduce
  double busGbPerS = 0; // 1 / beta, as a bus bandwidth
};

inline double alphaBetaSeconds(int ranks, double bytes, const AlphaBeta &f) {
  return f.fixedUs * 1e-6 +
         allReduceBusBytes(ranks, bytes) / (f.busGbPerS * 1e9);
}

/// The line that fits every size best in relative terms: least squares of
/// (model - measured) / measured. The small sizes, where the fixed cost is
/// nearly all of the time, set alpha; the large ones the bandwidth; the
/// middle sizes, where NCCL changes protocol and no line fits exactly, share
/// the error instead of all of it landing there. Exact on timings that are
/// a line. None without two distinct sizes or if the fit is not positive
/// (times that fall as sizes grow).
inline std::optional<AlphaBeta>
fitAllReduce(int ranks, const std::vector<AllReduceSample> &samples) {
  if (ranks < 2)
    return std::nullopt;
  // Weighted normal equations of t = a + b x, weights 1 / t^2.
  double s = 0, sx = 0, sxx = 0, st = 0, sxt = 0;
  for (const AllReduceSample &p : samples) {
    if (!(p.seconds > 0) || !(p.bytes > 0))
      return std::nullopt;
    double w = 1.0 / (p.seconds * p.seconds);
    double x = allReduceBusBytes(ranks, p.bytes);
    s += w;
    sx += w * x;
    sxx += w * x * x;
    st += w * p.seconds;
    sxt += w * x * p.seconds;
  }
  double det = s * sxx - sx * sx;
  if (samples.size() < 2 || !(det > 1e-12 * s * sxx))
    return std::nullopt;
  double a = (st * sxx - sx * sxt) / det;
  double b = (s * sxt - sx * st) / det;
  if (!(a > 0) || !(b > 0))
    return std::nullopt;
  return AlphaBeta{a * 1e6, 1.0 / b / 1e9};
}

/// The largest |model - measured| / measured over `samples`.
inline double worstRelativeError(int ranks,
                                 const std::vector<AllReduceSample> &samples,
                                 const AlphaBeta &f) {
  double worst = 0;
  for (const AllReduceSample &p : samples)
    worst = std::max(worst,
                     std::abs(alphaBetaSeconds(ranks, p.bytes, f) - p.seconds) /
                         p.seconds);
  return worst;
}

/// The hops the cost model charges the topology's per-hop latency for, at
/// small sizes: a tree's 2 ceil(log2 n), fewer than a ring's 2(n-1).
inline int treeHops(int ranks) {
  return 2 * int(std::ceil(std::log2(double(ranks))));
}

/// One measured all-reduce as the calibration file stores it.
struct AllReduceUs {
  int ranks = 0;
  double bytes = 0, us = 0;
  bool operator==(const AllReduceUs &) const = default;
};

/// One GPU count's all-reduces replayed from a CUDA graph: its samples and
/// the line fitted to them.
struct GraphCurve {
  int ranks = 0;
  std::vector<AllReduceSample> samples;
  AlphaBeta fit;
};

/// The runtime's all-reduce at each size: the one-shot peer kernel's
/// sample where the runtime takes it (payloads up to `peerLimit` bytes, and
/// measured), NCCL's above.
inline std::vector<AllReduceSample>
runtimeSamples(const std::vector<AllReduceSample> &nccl,
               const std::vector<AllReduceSample> &peer, double peerLimit) {
  std::vector<AllReduceSample> out;
  for (const AllReduceSample &n : nccl) {
    auto p = std::find_if(peer.begin(), peer.end(), [&](auto &q) {
      return q.bytes == n.bytes && q.bytes <= peerLimit;
    });
    out.push_back(p == peer.end() ? n : *p);
  }
  return out;
}

/// What the calibration file stores for the NVLink tier from the graph
/// curves.
struct NvlinkConstants {
  /// Every sample, less the one graph node the cost model adds to every
  /// kernel, the collectives included (at least 0.1 us).
  std::vector<AllReduceUs> allReduce;
  /// The fixed cost of a collective over GPU counts not measured, before
  /// the model adds hops x the topology's latency: the time of the smallest
  /// size over the fewest GPUs measured (all fixed cost), less its graph
  /// node and its tree hops' latency (at least 0.1 us).
  double baseUs = 0;
};

/// `curves` in rising GPU counts; `graphNodeUs` and `latencyUs` are the
/// calibration's graph node and the topology's NVLink hop.
inline NvlinkConstants nvlinkConstants(const std::vector<GraphCurve> &curves,
                                       double graphNodeUs, double latencyUs) {
  NvlinkConstants c;
  for (const GraphCurve &curve : curves)
    for (const AllReduceSample &p : curve.samples)
      c.allReduce.push_back(
          {curve.ranks, p.bytes, std::max(0.1, p.seconds * 1e6 - graphNodeUs)});
  if (!curves.empty() && !curves.front().samples.empty()) {
    const GraphCurve &fewest = curves.front();
    const AllReduceSample &smallest =
        *std::min_element(fewest.samples.begin(), fewest.samples.end(),
                          [](auto &a, auto &b) { return a.bytes < b.bytes; });
    c.baseUs = std::max(0.1, smallest.seconds * 1e6 - graphNodeUs -
                                 treeHops(fewest.ranks) * latencyUs);
  }
  return c;
}

/// An algorithm's `busbw_efficiency`: the mean over GPU counts of the fitted
/// bus bandwidth, over the link bandwidth the cost model multiplies it by,
/// within [0.01, 1] (the file's efficiencies are fractions, written with two
/// digits); 0 without fits.
inline double busbwEfficiency(const std::vector<AlphaBeta> &fits,
                              double linkGbPerS) {
  if (fits.empty() || !(linkGbPerS > 0))
    return 0;
  double sum = 0;
  for (const AlphaBeta &f : fits)
    sum += f.busGbPerS;
  return std::clamp(sum / double(fits.size()) / linkGbPerS, 0.01, 1.0);
}

//===----------------------------------------------------------------------===//
// The file's text
//===----------------------------------------------------------------------===//

/// The NVLink tier's constants as weft-calibrate found them: measured
/// where it timed all-reduces in a CUDA graph, else the estimates.
struct NvlinkResult {
  bool measured = false;
  /// The all-reduce points up to these bytes (by GPU count) are the
  /// one-shot peer kernel's.
  std::map<int, double> peerLimits;
  NvlinkConstants nv;
  int fewestRanks = 0;
  double ringEfficiency = 0.80, treeEfficiency = 0.70; // the estimates
  std::string ringHow = "estimate (H100: 361/450)", treeHow = "estimate";
};

/// The collectives.nvlink section of the file.
inline std::string nvlinkSection(const NvlinkResult &r, double graphNodeUs,
                                 double latencyUs) {
  std::ostringstream out;
  char line[512];
  out << "  nvlink:\n";
  if (!r.measured) {
    out << "    base_us: 6.0 # estimate\n";
  } else {
    std::snprintf(line, sizeof line,
                  "    base_us: %.2f # measured: the smallest %d-GPU "
                  "all-reduce less a graph node and %d hops x %.2f us\n",
                  r.nv.baseUs, r.fewestRanks, treeHops(r.fewestRanks),
                  latencyUs);
    out << line;
    std::string peer;
    for (auto [ranks, limit] : r.peerLimits)
      peer += (peer.empty() ? "" : ", ") + std::to_string(int(limit)) +
              " bytes on " + std::to_string(ranks) + " GPUs";
    std::snprintf(line, sizeof line,
                  "    all_reduce: # measured: the runtime's bf16 sum in "
                  "place (%s%s), replayed in a CUDA graph, less one graph "
                  "node (%.2f us)\n",
                  peer.empty() ? "NCCL" : "one-shot through peer memory up to ",
                  peer.empty() ? "" : (peer + ", NCCL above").c_str(),
                  graphNodeUs);
    out << line;
    for (const AllReduceUs &p : r.nv.allReduce) {
      std::snprintf(line, sizeof line,
                    "      - {ranks: %d, bytes: %.0f, us: %.2f} # measured\n",
                    p.ranks, p.bytes, p.us);
      out << line;
    }
  }
  std::snprintf(line, sizeof line,
                "    ring:\n      busbw_efficiency: %.2f # %s\n"
                "    tree:\n      busbw_efficiency: %.2f # %s\n",
                r.ringEfficiency, r.ringHow.c_str(), r.treeEfficiency,
                r.treeHow.c_str());
  out << line;
  return out.str();
}

inline size_t indentOf(const std::string &line) {
  return line.find_first_not_of(' ');
}

/// The lines [begin, end) of a calibration file's collectives.nvlink
/// section: "  nvlink:" and the lines indented under it, up to its last
/// key (comments and blank lines after that belong to what follows).
inline std::optional<std::pair<size_t, size_t>>
findNvlinkSection(const std::vector<std::string> &lines) {
  auto isContent = [&](size_t i) {
    size_t indent = indentOf(lines[i]);
    return indent != std::string::npos && lines[i][indent] != '#';
  };
  size_t i = 0;
  while (i < lines.size() && lines[i].rfind("collectives:", 0) != 0)
    ++i;
  for (++i; i < lines.size(); ++i) {
    if (!isContent(i))
      continue;
    if (indentOf(lines[i]) == 0)
      return std::nullopt; // the collectives section ended
    if (lines[i].rfind("  nvlink:", 0) == 0)
      break;
  }
  if (i >= lines.size())
    return std::nullopt;
  size_t last = i;
  for (size_t j = i + 1; j < lines.size(); ++j)
    if (isContent(j)) {
      if (indentOf(lines[j]) <= 2)
        break;
      last = j;
    }
  return std::make_pair(i, last + 1);
}

/// kernel.graph_node_us of a calibration file, if one can be read.
inline std::optional<double>
graphNodeUsOf(const std::vector<std::string> &lines) {
  for (const std::string &line : lines)
    if (line.rfind("  graph_node_us:", 0) == 0) {
      const char *text = line.c_str() + std::strlen("  graph_node_us:");
      char *end = nullptr;
      double v = std::strtod(text, &end);
      if (end != text && v > 0)
        return v;
    }
  return std::nullopt;
}

/// `lines` with their collectives.nvlink section (which must be there)
/// replaced by `section`; every other line, comments included, as it was.
inline std::string withNvlinkSection(const std::vector<std::string> &lines,
                                     const std::string &section) {
  auto [begin, end] = *findNvlinkSection(lines);
  std::string text;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i == begin)
      text += section;
    if (i < begin || i >= end)
      text += lines[i] + "\n";
  }
  return text;
}

} // namespace weft::calibrate

#endif // WEFT_TOOLS_WEFT_CALIBRATE_COLLECTIVEFIT_H
