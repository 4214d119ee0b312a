// The what-if planner: imports and fuses a model once, builds the cost model
// of each tensor-parallel degree, and predicts every layout (tp x pp x dp x
// micro-batches) of a topology for a workload.
#ifndef WEFT_COMPILER_COST_PLANNER_H
#define WEFT_COMPILER_COST_PLANNER_H

#include "compiler/cost/CostModel.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"

#include <memory>

namespace mlir::weft::cost {

enum class Objective { Latency, Throughput };

struct PlanRequest {
  std::string modelPath;
  llvm::StringMap<int64_t> dims; // other symbolic dims (--dim NAME=VALUE)
  Workload work;
  std::string dtype = "bf16"; // compute type: f32, f16 or bf16
  int64_t maxGpus = 0;        // 0: the topology's
  Objective objective = Objective::Latency;
  // A fixed degree, or 0 to search it.
  int64_t tp = 0, pp = 0, dp = 0, microbatches = 0;
};

struct PlanResult {
  std::string batchDim, seqDim; // the symbolic dims bound from the workload
  /// Every layout tried: those that fit first, best first by the
  /// objective, then those rejected, the smallest shortfall first.
  std::vector<Prediction> layouts;
  int64_t fitting = 0;
};

/// The names of the model's [batch, seq] dims: those of the first integer
/// graph input of rank 2 whose two dims are symbolic (and different).
llvm::Expected<std::pair<std::string, std::string>>
findBatchSeqDims(llvm::StringRef modelPath);

/// The model, imported and fused once, with its per-tp graphs and costs.
class Planner {
public:
  /// Loads the model and binds its dims: the first integer graph input of
  /// rank 2 whose dims are symbolic is [batch, seq]; its two dims are bound
  /// to 1 and the prompt length (costs scale with the batch), the others
  /// from `request.dims`. Fails with a message naming what is wrong;
  /// diagnostics of the import go to the context's handler.
  static llvm::Expected<std::unique_ptr<Planner>>
  create(MLIRContext &ctx, const PlanRequest &request);

  /// The costs of the per-rank graph for `tp`, built on first use (the
  /// tensor-parallel pass on a clone of the fused module, as `weft compile
  /// --tp` runs it). Fails with the pass's message if `tp` cannot split it.
  llvm::Expected<const GraphCosts *> costsFor(int64_t tp);

  /// Predicts one layout.
  llvm::Expected<Prediction> predict(const Layout &layout, const Topology &topo,
                                     const Calibration &cal);

  /// Enumerates and ranks the layouts of `topo` for the request.
  llvm::Expected<PlanResult> plan(const Topology &topo, const Calibration &cal);

  const PlanRequest &request() const { return req; }

private:
  Planner(MLIRContext &ctx, PlanRequest request)
      : ctx(ctx), req(std::move(request)) {}

  MLIRContext &ctx;
  PlanRequest req;
  std::string batchDim, seqDim;
  OwningOpRef<ModuleOp> fused;
  std::map<int64_t, OwningOpRef<ModuleOp>> modules;
  std::map<int64_t, GraphCosts> costs;
  std::map<int64_t, std::string> tpErrors;
};

/// Whether `a` is better than `b` for `objective` (both fit).
bool better(const Prediction &a, const Prediction &b, Objective objective);

} // namespace mlir::weft::cost

#endif // WEFT_COMPILER_COST_PLANNER_H
