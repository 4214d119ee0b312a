// The table, JSON and SVG views of `weft plan`'s predictions.
#include "tools/weft/PlanReport.h"

#include "runtime/support/SafeFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>

using namespace mlir::weft;
using namespace mlir::weft::cost;

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string layoutName(const Layout &l) {
  return llvm::formatv("tp {0} x pp {1} x dp {2}, {3} micro-batch{4}", l.tp,
                       l.pp, l.dp, l.microbatches,
                       l.microbatches == 1 ? "" : "es")
      .str();
}

std::string percent(double share) {
  return llvm::formatv("{0:F0}%", 100.0 * share).str();
}

std::string ms(double seconds) {
  return llvm::formatv("{0:F2} ms", seconds * 1e3).str();
}

llvm::StringRef objectiveName(Objective o) {
  return o == Objective::Latency ? "latency" : "throughput";
}
} // namespace

void ::weft::cli::printPlanTable(const PlanReport &r, int64_t top, bool explain,
                                 llvm::raw_ostream &os) {
  const PlanRequest &req = r.request;
  const std::vector<Prediction> &all = r.result.layouts;
  int64_t fitting = r.result.fitting;
  os << "weft plan: " << r.model << "\n"
     << "  topology " << r.topology.name << ": " << r.topology.worldSize()
     << " x " << r.topology.gpu.type << " ("
     << formatBytes(r.topology.gpu.memoryGib * kGiB) << ", "
     << r.topology.gpusPerNode << " per node)\n"
     << "  calibration " << r.calibration.gpu << ", measured "
     << r.calibration.measuredDate << "\n"
     << "  workload: batch " << req.work.batch << " x (prompt "
     << req.work.prompt << " + gen " << req.work.gen << ") tokens, "
     << req.dtype << "; dims " << r.result.batchDim << "=" << req.work.batch
     << " " << r.result.seqDim << "=" << req.work.prompt << "\n"
     << "  objective: " << objectiveName(req.objective) << "; " << fitting
     << " layout" << (fitting == 1 ? "" : "s") << " fit, "
     << all.size() - fitting << " rejected\n";
  if (fitting) {
    os << "\n"
       << llvm::format("%4s %3s %3s %4s %3s %5s %8s %11s %10s %10s %10s "
                       "%13s %6s %6s %9s\n",
                       "rank", "tp", "pp", "dp", "mb", "gpus", "GiB/GPU",
                       "prefill ms", "decode ms", "request s", "tok/s/GPU",
                       "cluster tok/s", "comm", "bubble", "max seqs");
    for (int64_t i = 0; i < std::min<int64_t>(top, fitting); ++i) {
      const Prediction &p = all[i];
      os << llvm::format(
          "%4d %3d %3d %4d %3d %5d %8.1f %11.2f %10.3f %10.3f "
          "%10.1f %13.4g %5.0f%% %5.0f%% %9lld\n",
          int(i + 1), int(p.layout.tp), int(p.layout.pp), int(p.layout.dp),
          int(p.layout.microbatches), int(p.layout.gpus()),
          p.memory.total() / kGiB, p.prefillSeconds * 1e3,
          p.decodeSecondsPerToken * 1e3, p.requestSeconds, p.tokensPerSPerGpu,
          p.clusterTokensPerS,
          100.0 * (req.work.gen ? p.decodeCommShare : p.prefillCommShare),
          100.0 * p.bubble, (long long)p.maxSequences);
    }
    if (fitting > top)
      os << "  ... " << fitting - top << " more (--top N, --json)\n";
  }
  if (int64_t rejected = all.size() - fitting) {
    os << "\nrejected (closest to fitting first):\n";
    int64_t shown = std::min<int64_t>(rejected, top);
    for (int64_t i = fitting; i < fitting + shown; ++i) {
      // A degree the tensor-parallel pass refuses rejects all its layouts.
      if (std::isfinite(all[i].memory.total()))
        os << "  " << layoutName(all[i].layout) << ":";
      os << " " << all[i].reason << "\n";
    }
    if (rejected > shown)
      os << "  ... " << rejected - shown << " more (--json lists all)\n";
  }
  if (explain && fitting)
    os << "\nwhy " << layoutName(all[0].layout) << ":\n"
       << explainLayout(all[0], fitting > 1 ? &all[1] : nullptr, r.topology,
                        r.calibration);
}

std::string weft::cli::explainLayout(const Prediction &best,
                                     const Prediction *next,
                                     const Topology &topo,
                                     const Calibration &cal) {
  std::string out;
  llvm::raw_string_ostream os(out);
  // What dominates a phase: the largest of its terms.
  auto dominant = [](const TimeSplit &t, bool decode) {
    std::pair<double, std::string> terms[] = {
        {t.weightStreaming, "weight streaming (reading the weights from HBM)"},
        {t.gemm - t.weightStreaming, "matrix-multiply compute"},
        {decode ? t.kvReads : 0.0, "KV-cache reads"},
        {t.attention - t.kvReads, "attention compute"},
        {t.memory, "memory-bound norms and elementwise kernels"},
        {t.collectives, "all-reduce latency and bandwidth"},
        {t.p2p, "pipeline send/recv"},
        {t.overhead, "kernel launch overhead"},
        {t.bubble, "the pipeline bubble"}};
    double total = 0;
    for (auto &[v, name] : terms)
      total += v;
    auto *top =
        std::max_element(std::begin(terms), std::end(terms),
                         [](auto &a, auto &b) { return a.first < b.first; });
    return std::make_pair(top->second, total > 0 ? top->first / total : 0.0);
  };
  auto [prefillBound, prefillShare] = dominant(best.prefill, false);
  os << "  prefill " << ms(best.prefillSeconds) << " is bound by "
     << prefillBound << " (" << percent(prefillShare) << " of it); "
     << "communication " << percent(best.prefillCommShare) << "\n";
  if (best.decodeSecondsPerToken > 0) {
    auto [decodeBound, decodeShare] = dominant(best.decode, true);
    os << "  decode " << ms(best.decodeSecondsPerToken)
       << " per token is bound by " << decodeBound << " ("
       << percent(decodeShare) << "): "
       << llvm::formatv("{0:F1} GiB of weights per GPU at {1} TB/s",
                        best.memory.weights / kGiB, cal.hbmTbPerS)
       << "; communication " << percent(best.decodeCommShare) << "\n";
  }
  if (best.layout.pp > 1)
    os << "  pipeline bubble (pp-1)/(m+pp-1) = " << best.layout.pp - 1 << "/"
       << best.layout.microbatches + best.layout.pp - 1 << " = "
       << percent(best.bubble) << "\n";
  if (best.layout.tp > 1)
    os << "  tensor parallelism " << best.layout.tp
       << " splits each layer's weights over one node's "
       << toString(topo.intraNode.kind) << " ("
       << llvm::formatv("{0}", topo.intraNode.gbPerSPerDirection)
       << " GB/s per GPU), at the cost of 2 all-reduces per layer\n";
  os << "  memory " << llvm::formatv("{0:F1}", best.memory.total() / kGiB)
     << " of " << llvm::formatv("{0:F0}", best.capacityBytes / kGiB)
     << " GiB per GPU (weights "
     << llvm::formatv("{0:F1}", best.memory.weights / kGiB) << ", KV cache "
     << llvm::formatv("{0:F1}", best.memory.kvCache / kGiB) << ", activations "
     << llvm::formatv("{0:F1}", best.memory.activations / kGiB) << ")\n";
  if (next) {
    os << "  the runner-up, " << layoutName(next->layout) << ", takes "
       << llvm::formatv("{0:F3}", next->requestSeconds) << " s a request ("
       << llvm::formatv("{0:F3}", best.requestSeconds) << " s) and "
       << llvm::formatv("{0:F1}", next->tokensPerSPerGpu)
       << " tokens/s per GPU ("
       << llvm::formatv("{0:F1}", best.tokensPerSPerGpu) << ")";
    if (next->layout.pp > best.layout.pp)
      os << "; its deeper pipeline adds a " << percent(next->bubble)
         << " bubble";
    if (next->layout.tp > best.layout.tp)
      os << "; its wider tensor parallelism spends "
         << percent(next->decodeSecondsPerToken > 0 ? next->decodeCommShare
                                                    : next->prefillCommShare)
         << " in all-reduces";
    if (next->layout.tp < best.layout.tp)
      os << "; it streams "
         << llvm::formatv("{0:F1}", next->memory.weights / kGiB)
         << " GiB of weights per GPU per step";
    os << "\n";
  }
  return out;
}

static llvm::json::Object memoryJson(const MemoryUse &m) {
  return llvm::json::Object{{"weights_bytes", m.weights},
                            {"kv_cache_bytes", m.kvCache},
                            {"activation_bytes", m.activations},
                            {"workspace_bytes", m.workspace},
                            {"nccl_bytes", m.nccl},
                            {"cuda_graph_bytes", m.cudaGraph},
                            {"context_bytes", m.context},
                            {"total_bytes", m.total()}};
}

void ::weft::cli::printPlanJson(const PlanReport &r, llvm::raw_ostream &os) {
  llvm::json::Array layouts;
  for (const Prediction &p : r.result.layouts) {
    llvm::json::Object o{{"tp", p.layout.tp},
                         {"pp", p.layout.pp},
                         {"dp", p.layout.dp},
                         {"microbatches", p.layout.microbatches},
                         {"gpus", p.layout.gpus()},
                         {"fits", p.fits},
                         {"max_sequences", p.maxSequences}};
    if (!p.fits)
      o["reason"] = p.reason;
    if (std::isfinite(p.memory.total())) {
      o["memory"] = memoryJson(p.memory);
      o["capacity_bytes"] = p.capacityBytes;
      llvm::json::Array stages;
      for (double w : p.stageWeightBytes)
        stages.push_back(w);
      o["stage_weight_bytes"] = std::move(stages);
      o["prefill_s"] = p.prefillSeconds;
      o["decode_s_per_token"] = p.decodeSecondsPerToken;
      o["request_s"] = p.requestSeconds;
      o["decode_tokens_per_s"] = p.decodeTokensPerS;
      o["tokens_per_s_per_gpu"] = p.tokensPerSPerGpu;
      o["cluster_tokens_per_s"] = p.clusterTokensPerS;
      o["prefill_comm_share"] = p.prefillCommShare;
      o["decode_comm_share"] = p.decodeCommShare;
      o["bubble"] = p.bubble;
    }
    layouts.push_back(std::move(o));
  }
  const PlanRequest &req = r.request;
  llvm::json::Object doc{
      {"model", r.model},
      {"topology", r.topology.name},
      {"gpus_available", r.topology.worldSize()},
      {"calibration",
       llvm::json::Object{{"gpu", r.calibration.gpu},
                          {"measured", r.calibration.measuredDate}}},
      {"batch", req.work.batch},
      {"prompt", req.work.prompt},
      {"gen", req.work.gen},
      {"dtype", req.dtype},
      {"objective", objectiveName(req.objective)},
      {"dims", llvm::json::Object{{r.result.batchDim, req.work.batch},
                                  {r.result.seqDim, req.work.prompt}}},
      {"fitting", r.result.fitting},
      {"layouts", std::move(layouts)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(doc))) << "\n";
}

namespace {
std::string xmlEscape(llvm::StringRef s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '&':
      out += "&amp;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}
} // namespace

bool ::weft::cli::writeFrontierSvg(const PlanReport &r, llvm::StringRef path,
                                   std::string &error) {
  // x: request latency, y: tokens/s per GPU; the frontier is every layout
  // no other beats on both.
  std::vector<const Prediction *> points;
  for (int64_t i = 0; i < r.result.fitting; ++i)
    points.push_back(&r.result.layouts[i]);
  llvm::sort(points, [](auto *a, auto *b) {
    return std::make_pair(a->requestSeconds, -a->tokensPerSPerGpu) <
           std::make_pair(b->requestSeconds, -b->tokensPerSPerGpu);
  });
  std::vector<const Prediction *> frontier;
  for (const Prediction *p : points)
    if (frontier.empty() ||
        p->tokensPerSPerGpu > frontier.back()->tokensPerSPerGpu)
      frontier.push_back(p);
  const double w = 800, h = 520, left = 100, right = 40, topMargin = 50,
               bottom = 60;
  // x spans the latencies seen (with a margin), y starts at zero.
  double xMin = INFINITY, xMax = 0, yMax = 0;
  for (const Prediction *p : points) {
    xMin = std::min(xMin, p->requestSeconds);
    xMax = std::max(xMax, p->requestSeconds);
    yMax = std::max(yMax, p->tokensPerSPerGpu);
  }
  if (points.empty())
    xMin = 0, xMax = 1;
  double pad = std::max(0.05 * (xMax - xMin), 0.05 * xMax);
  xMin = std::max(0.0, xMin - pad);
  xMax += pad;
  yMax = yMax > 0 ? yMax * 1.1 : 1;
  auto x = [&](double v) {
    return left + (v - xMin) / (xMax - xMin) * (w - left - right);
  };
  auto y = [&](double v) {
    return h - bottom - v / yMax * (h - topMargin - bottom);
  };
  std::string svg;
  llvm::raw_string_ostream os(svg);
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << llvm::formatv("<svg xmlns=\"http://www.w3.org/2000/svg\" "
                      "width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
                      "font-family=\"sans-serif\" font-size=\"12\">\n",
                      w, h)
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << llvm::formatv("<text x=\"{0}\" y=\"24\" font-size=\"15\">", left)
     << xmlEscape(llvm::formatv("{0} on {1}: batch {2}, prompt {3}, gen {4} "
                                "({5})",
                                llvm::sys::path::filename(r.model),
                                r.topology.name, r.request.work.batch,
                                r.request.work.prompt, r.request.work.gen,
                                r.request.dtype)
                      .str())
     << "</text>\n";
  // Axes with five ticks each.
  os << llvm::formatv("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" "
                      "stroke=\"black\"/>\n",
                      left, h - bottom, w - right)
     << llvm::formatv("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" "
                      "stroke=\"black\"/>\n",
                      left, h - bottom, topMargin);
  for (int i = 0; i <= 5; ++i) {
    double xv = xMin + (xMax - xMin) * i / 5, yv = yMax * i / 5;
    os << llvm::formatv("<text x=\"{0:F1}\" y=\"{1}\" "
                        "text-anchor=\"middle\">",
                        x(xv), h - bottom + 18)
       << llvm::format("%.3g", xv) << "</text>\n"
       << llvm::formatv("<text x=\"{0}\" y=\"{1:F1}\" text-anchor=\"end\">",
                        left - 6, y(yv) + 4)
       << llvm::format("%.3g", yv) << "</text>\n";
  }
  os << llvm::formatv("<text x=\"{0}\" y=\"{1}\" text-anchor=\"middle\">"
                      "request latency (s): prefill + gen x decode</text>\n",
                      (left + w - right) / 2, h - 16)
     << llvm::formatv("<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" "
                      "transform=\"rotate(-90 18 {0})\">generated tokens/s "
                      "per GPU</text>\n",
                      (topMargin + h - bottom) / 2);
  for (const Prediction *p : points)
    os << llvm::formatv("<circle cx=\"{0:F1}\" cy=\"{1:F1}\" r=\"3\" "
                        "fill=\"#9ab\"/>\n",
                        x(p->requestSeconds), y(p->tokensPerSPerGpu));
  if (!frontier.empty()) {
    os << "<polyline fill=\"none\" stroke=\"#c33\" stroke-width=\"2\" "
          "points=\"";
    for (const Prediction *p : frontier)
      os << llvm::formatv("{0:F1},{1:F1} ", x(p->requestSeconds),
                          y(p->tokensPerSPerGpu));
    os << "\"/>\n";
    for (const Prediction *p : frontier)
      os << llvm::formatv("<circle cx=\"{0:F1}\" cy=\"{1:F1}\" r=\"4\" "
                          "fill=\"#c33\"/>\n<text x=\"{2:F1}\" y=\"{3:F1}\" "
                          "font-size=\"10\">tp{4} pp{5} dp{6} mb{7}</text>\n",
                          x(p->requestSeconds), y(p->tokensPerSPerGpu),
                          x(p->requestSeconds) + 6, y(p->tokensPerSPerGpu) - 6,
                          p->layout.tp, p->layout.pp, p->layout.dp,
                          p->layout.microbatches);
  } else {
    os << llvm::formatv("<text x=\"{0}\" y=\"{1}\">no layout fits</text>\n",
                        left + 20, topMargin + 30);
  }
  os << "</svg>\n";
  // Only a regular file or a new path is replaced (SafeFile.h).
  if (auto s = ::weft::runtime::checkWritableFile(path.str()); !s.ok()) {
    error = "--svg: " + s.message();
    return false;
  }
  llvm::Error err = llvm::writeToOutput(path, [&](llvm::raw_ostream &out) {
    out << svg;
    return llvm::Error::success();
  });
  if (err) {
    error =
        "cannot write '" + path.str() + "': " + llvm::toString(std::move(err));
    return false;
  }
  return true;
}

std::string weft::cli::noFitMessage(const PlanReport &r) {
  const std::vector<Prediction> &all = r.result.layouts;
  int64_t gpus = r.request.maxGpus ? std::min<int64_t>(r.request.maxGpus,
                                                       r.topology.worldSize())
                                   : r.topology.worldSize();
  const Prediction *closest = nullptr;
  for (const Prediction &p : all)
    if (std::isfinite(p.memory.total())) {
      closest = &p;
      break;
    }
  if (!closest)
    return all.empty() ? "no layout to try"
                       : "no layout can be planned: " + all.front().reason;
  double shortfall = closest->memory.total() - closest->capacityBytes;
  return llvm::formatv("no layout fits on {0} GPU{1} of '{2}': the closest, "
                       "{3}, {4} ({5} short)",
                       gpus, gpus == 1 ? "" : "s", r.topology.name,
                       layoutName(closest->layout), closest->reason,
                       formatBytes(shortfall))
      .str();
}
