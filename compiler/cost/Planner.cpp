// The what-if planner: one import and fusion of the model, one cost model
// per tensor-parallel degree, and the enumeration of layouts.
#include "compiler/cost/Planner.h"

#include "compiler/onnx/Importer.h"
#include "compiler/onnx/OnnxModel.h"
#include "compiler/pipeline/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"

#include <set>

using namespace mlir;
using namespace mlir::weft;
using namespace mlir::weft::cost;

static llvm::Error planError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

llvm::Expected<std::pair<std::string, std::string>>
cost::findBatchSeqDims(llvm::StringRef modelPath) {
  llvm::Expected<OnnxModel> model = loadOnnxModel(modelPath);
  if (!model)
    return model.takeError();
  std::set<std::string> initializers;
  for (const onnx::TensorProto &t : model->proto.graph().initializer())
    initializers.insert(t.name());
  // The [batch, seq] input: integer ids (or a mask) with two symbolic dims.
  for (const onnx::ValueInfoProto &in : model->proto.graph().input()) {
    if (initializers.count(in.name()) || !in.type().has_tensor_type())
      continue;
    const onnx::TypeProto::Tensor &t = in.type().tensor_type();
    bool integer = t.elem_type() == onnx::TensorProto::INT64 ||
                   t.elem_type() == onnx::TensorProto::INT32;
    if (!integer || t.shape().dim_size() != 2 ||
        t.shape().dim(0).dim_param().empty() ||
        t.shape().dim(1).dim_param().empty())
      continue;
    if (t.shape().dim(0).dim_param() == t.shape().dim(1).dim_param())
      return planError(llvm::formatv(
          "{0}: input '{1}' has dims [{2}, {2}], one symbol; the batch and "
          "the sequence length must be separate dims",
          modelPath, in.name(), t.shape().dim(0).dim_param()));
    return std::make_pair(t.shape().dim(0).dim_param(),
                          t.shape().dim(1).dim_param());
  }
  return planError(llvm::formatv("{0}: no graph input of shape [batch, seq] "
                                 "with symbolic dims (integer ids) to bind "
                                 "the batch and prompt length to",
                                 modelPath));
}

llvm::Expected<std::unique_ptr<Planner>>
Planner::create(MLIRContext &ctx, const PlanRequest &request) {
  std::unique_ptr<Planner> planner(new Planner(ctx, request));
  auto names = findBatchSeqDims(request.modelPath);
  if (!names)
    return names.takeError();
  std::tie(planner->batchDim, planner->seqDim) = *names;
  for (const std::string &bound : {planner->batchDim, planner->seqDim})
    if (request.dims.contains(bound))
      return planError(
          llvm::formatv("--dim {0}: that dim is bound by --{1}", bound,
                        bound == planner->batchDim ? "batch" : "prompt"));

  // Costs scale with the batch, so the graph is bound for one sequence
  // (which also keeps folded masks small).
  ImportOptions options;
  options.dims = request.dims;
  options.dims[planner->batchDim] = 1;
  options.dims[planner->seqDim] = request.work.prompt;
  planner->fused = importOnnxModel(ctx, request.modelPath, options);
  if (!planner->fused)
    return planError("the model could not be imported (see the errors "
                     "above)");
  PassManager pm(&ctx);
  buildGraphPipeline(pm, request.dtype == "f32" ? "" : request.dtype);
  if (failed(pm.run(*planner->fused)))
    return planError("the model could not be fused (see the errors above)");
  return planner;
}

llvm::Expected<const GraphCosts *> Planner::costsFor(int64_t tp) {
  if (auto it = costs.find(tp); it != costs.end())
    return &it->second;
  if (auto it = tpErrors.find(tp); it != tpErrors.end())
    return planError(it->second);
  // The pass's diagnostics say why a degree does not divide the model; they
  // become this degree's reason, not errors of the run.
  std::string message;
  OwningOpRef<ModuleOp> module = fused->clone();
  FailureOr<GraphCosts> built = failure();
  {
    ScopedDiagnosticHandler capture(&ctx, [&](Diagnostic &diag) {
      if (message.empty() && diag.getSeverity() == DiagnosticSeverity::Error)
        message = diag.str();
      return success();
    });
    PassManager pm(&ctx);
    buildLayoutPipeline(pm, tp);
    if (succeeded(pm.run(*module))) {
      auto func = module->lookupSymbol<func::FuncOp>("main");
      if (func)
        built = GraphCosts::build(func, tp, req.work.prompt);
      else
        message = "the model has no @main";
    }
  }
  if (failed(built)) {
    tpErrors[tp] =
        llvm::formatv("tp {0}: {1}", tp,
                      message.empty() ? "cannot be planned" : message)
            .str();
    return planError(tpErrors[tp]);
  }
  modules[tp] = std::move(module);
  return &costs.emplace(tp, std::move(*built)).first->second;
}

llvm::Expected<Prediction> Planner::predict(const Layout &layout,
                                            const Topology &topo,
                                            const Calibration &cal) {
  llvm::Expected<const GraphCosts *> graph = costsFor(layout.tp);
  if (!graph)
    return graph.takeError();
  return (*graph)->predict(layout, req.work, topo, cal);
}

bool cost::better(const Prediction &a, const Prediction &b,
                  Objective objective) {
  auto key = [&](const Prediction &p) {
    double primary = objective == Objective::Latency ? p.requestSeconds
                                                     : -p.tokensPerSPerGpu;
    double secondary = objective == Objective::Latency ? -p.tokensPerSPerGpu
                                                       : p.requestSeconds;
    return std::make_tuple(primary, secondary, p.layout.gpus(), p.layout.tp,
                           p.layout.pp, p.layout.microbatches);
  };
  return key(a) < key(b);
}

/// The values of a degree to try: the fixed one, or those of `options`.
static std::vector<int64_t> choices(int64_t fixed,
                                    const std::vector<int64_t> &options) {
  return fixed ? std::vector<int64_t>{fixed} : options;
}

llvm::Expected<PlanResult> Planner::plan(const Topology &topo,
                                         const Calibration &cal) {
  PlanResult result;
  result.batchDim = batchDim;
  result.seqDim = seqDim;
  int64_t batch = req.work.batch;
  int64_t maxGpus =
      req.maxGpus ? std::min(req.maxGpus, topo.worldSize()) : topo.worldSize();
  std::vector<int64_t> tps;
  for (int64_t tp = 1; tp <= std::min(topo.gpusPerNode, maxGpus); tp *= 2)
    tps.push_back(tp);
  std::vector<Prediction> fit, rejected;
  for (int64_t tp : choices(req.tp, tps)) {
    llvm::Expected<const GraphCosts *> graph = costsFor(tp);
    if (!graph) {
      Prediction p;
      p.layout.tp = tp;
      p.reason = llvm::toString(graph.takeError());
      p.memory.weights = INFINITY;
      rejected.push_back(p);
      continue;
    }
    // Pipeline depths: powers of two and divisors of the layer count.
    int64_t layers = std::max<int64_t>(1, (*graph)->layers());
    std::set<int64_t> pps;
    for (int64_t pp = 1; pp <= layers && tp * pp <= maxGpus; ++pp)
      if (layers % pp == 0 || (pp & (pp - 1)) == 0)
        pps.insert(pp);
    for (int64_t pp : choices(req.pp, {pps.begin(), pps.end()})) {
      std::vector<int64_t> dps;
      for (int64_t dp = 1; dp <= batch && tp * pp * dp <= maxGpus; ++dp)
        if (batch % dp == 0)
          dps.push_back(dp);
      for (int64_t dp : choices(req.dp, dps)) {
        // Micro-batches help only a pipeline; more than twice its depth
        // adds launches and no overlap.
        std::vector<int64_t> ms;
        for (int64_t m = 1; m <= (pp == 1 ? 1 : 2 * pp); ++m)
          if ((batch / dp) % m == 0)
            ms.push_back(m);
        for (int64_t m : choices(req.microbatches, ms)) {
          Prediction p =
              (*graph)->predict({tp, pp, dp, m}, req.work, topo, cal);
          (p.fits ? fit : rejected).push_back(std::move(p));
        }
      }
    }
  }
  llvm::stable_sort(fit, [&](const Prediction &a, const Prediction &b) {
    return better(a, b, req.objective);
  });
  llvm::stable_sort(rejected, [](const Prediction &a, const Prediction &b) {
    return a.memory.total() - a.capacityBytes <
           b.memory.total() - b.capacityBytes;
  });
  result.fitting = fit.size();
  result.layouts = std::move(fit);
  llvm::append_range(result.layouts, rejected);
  return result;
}
