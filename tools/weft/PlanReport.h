// How `weft plan` shows its predictions: a ranked table (with --explain), a
// JSON document, and an SVG chart of the latency/throughput frontier.
#ifndef WEFT_TOOLS_WEFT_PLANREPORT_H
#define WEFT_TOOLS_WEFT_PLANREPORT_H

#include "compiler/cost/Planner.h"

#include "llvm/Support/raw_ostream.h"

namespace weft::cli {

struct PlanReport {
  std::string model;
  const mlir::weft::Topology &topology;
  const mlir::weft::cost::Calibration &calibration;
  const mlir::weft::cost::PlanRequest &request;
  const mlir::weft::cost::PlanResult &result;
};

/// The best layouts (at most `top`), the rejected ones with their reasons,
/// and with `explain` why the first wins.
void printPlanTable(const PlanReport &report, int64_t top, bool explain,
                    llvm::raw_ostream &os);

/// One JSON object: the request, and per layout its degrees, memory and
/// predictions.
void printPlanJson(const PlanReport &report, llvm::raw_ostream &os);

/// Writes the chart; false with `error` set when the file cannot be written
/// (nothing is left behind).
bool writeFrontierSvg(const PlanReport &report, llvm::StringRef path,
                      std::string &error);

/// Why no layout fits: the one closest to fitting and its shortfall.
std::string noFitMessage(const PlanReport &report);

/// Why `best` is fastest, in a few lines: what bounds its prefill and its
/// decode, and what the runner-up loses.
std::string explainLayout(const mlir::weft::cost::Prediction &best,
                          const mlir::weft::cost::Prediction *next,
                          const mlir::weft::Topology &topology,
                          const mlir::weft::cost::Calibration &calibration);

} // namespace weft::cli

#endif // WEFT_TOOLS_WEFT_PLANREPORT_H
