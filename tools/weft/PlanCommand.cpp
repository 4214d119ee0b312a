// `weft plan`: predicts every layout of a topology for a workload with the
// cost model and prints them ranked (a table, JSON, or an SVG chart of the
// latency/throughput frontier).
#include "tools/weft/Commands.h"
#include "tools/weft/Options.h"
#include "tools/weft/PlanReport.h"

#include "compiler/cost/Planner.h"
#include "compiler/pipeline/Pipeline.h"
#include "compiler/topology/Topology.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::weft::cost;
namespace cl = llvm::cl;

int ::weft::cli::runPlan(int argc, char **argv) {
  cl::OptionCategory cat("weft plan options");
  cl::opt<std::string> model(cl::Positional, cl::desc("<model.onnx>"),
                             cl::cat(cat));
  cl::opt<std::string> topologyName(
      "topology",
      cl::desc("The cluster: a preset (weft compile --list-topologies) or a "
               "topology YAML file (default: h100x1)"),
      cl::value_desc("NAME|FILE"), cl::init("h100x1"), cl::cat(cat));
  cl::opt<int64_t> batch("batch", cl::desc("Sequences served at once"),
                         cl::value_desc("B"), cl::cat(cat));
  cl::opt<int64_t> prompt("prompt", cl::desc("Prompt tokens per sequence"),
                          cl::value_desc("P"), cl::cat(cat));
  cl::opt<int64_t> gen("gen",
                       cl::desc("Tokens generated per sequence (default 0: "
                                "prefill only)"),
                       cl::value_desc("G"), cl::init(0), cl::cat(cat));
  cl::list<std::string> dimSpecs(
      "dim", cl::desc("Bind another symbolic input dim: --dim NAME=VALUE"),
      cl::value_desc("NAME=VALUE"), cl::cat(cat));
  cl::opt<std::string> dtype("dtype",
                             cl::desc("Compute type: bf16 (default), f16 "
                                      "or f32"),
                             cl::value_desc("bf16|f16|f32"), cl::init("bf16"),
                             cl::cat(cat));
  cl::opt<int64_t> maxGpus("max-gpus",
                           cl::desc("Use at most N GPUs (default: all of "
                                    "the topology's)"),
                           cl::value_desc("N"), cl::init(0), cl::cat(cat));
  cl::opt<Objective> objective(
      "objective", cl::desc("What ranks layouts (default latency)"),
      cl::values(clEnumValN(Objective::Latency, "latency",
                            "the request's time: prefill + gen x decode"),
                 clEnumValN(Objective::Throughput, "throughput",
                            "generated tokens per second per GPU")),
      cl::init(Objective::Latency), cl::cat(cat));
  cl::opt<bool> json("json", cl::desc("Print JSON: one object per layout"),
                     cl::cat(cat));
  cl::opt<std::string> svg("svg",
                           cl::desc("Write an SVG chart of the "
                                    "latency/throughput frontier"),
                           cl::value_desc("FILE"), cl::cat(cat));
  cl::opt<bool> explain("explain", cl::desc("Say why the top layout wins"),
                        cl::cat(cat));
  cl::opt<int64_t> top("top",
                       cl::desc("Layouts listed in the table (default 10)"),
                       cl::value_desc("N"), cl::init(10), cl::cat(cat));
  cl::opt<std::string> calibrationFile(
      "calibration",
      cl::desc("Cost-model constants (default: the built-in file for the "
               "topology's GPU type)"),
      cl::value_desc("FILE"), cl::cat(cat));
  cl::opt<int64_t> tp("tp", cl::desc("Fix the tensor-parallel degree"),
                      cl::value_desc("N"), cl::init(0), cl::cat(cat));
  cl::opt<int64_t> pp("pp", cl::desc("Fix the pipeline depth"),
                      cl::value_desc("N"), cl::init(0), cl::cat(cat));
  cl::opt<int64_t> dp("dp", cl::desc("Fix the data-parallel replicas"),
                      cl::value_desc("N"), cl::init(0), cl::cat(cat));
  cl::opt<int64_t> microbatches("microbatches",
                                cl::desc("Fix the micro-batches per replica"),
                                cl::value_desc("N"), cl::init(0), cl::cat(cat));
  cl::HideUnrelatedOptions(cat);
  if (!::weft::cli::parseCommandLine(
          argc, argv,
          "predict memory, latency and throughput of every layout\n\n"
          "  weft plan model.onnx --topology dgx-h100 --batch 8 --prompt "
          "2048 --gen 256\n"))
    return 2;

  auto refuse = [](const llvm::Twine &message) {
    llvm::errs() << "weft: error: " << message << "\n";
    return 2;
  };
  if (model.empty())
    return refuse("no model given (see --help)");
  if (batch.getNumOccurrences() == 0 || prompt.getNumOccurrences() == 0)
    return refuse("--batch and --prompt are required");
  if (batch < 1 || prompt < 1)
    return refuse("--batch and --prompt must be at least 1");
  if (gen < 0)
    return refuse("--gen must not be negative");
  if (dtype != "f32" && dtype != "f16" && dtype != "bf16")
    return refuse("--dtype must be bf16, f16 or f32, not '" + dtype + "'");
  if (maxGpus < 0 || (maxGpus.getNumOccurrences() && maxGpus == 0))
    return refuse("--max-gpus must be at least 1");
  if (top < 1)
    return refuse("--top must be at least 1");
  for (auto [name, value] : {std::pair<const char *, int64_t>{"tp", tp},
                             {"pp", pp},
                             {"dp", dp},
                             {"microbatches", microbatches}})
    if (value < 0)
      return refuse(llvm::Twine("--") + name + " must be at least 1");
  if (batch % (std::max<int64_t>(dp, 1) * std::max<int64_t>(microbatches, 1)))
    return refuse(llvm::formatv("--batch {0} is not divisible by --dp {1} x "
                                "--microbatches {2}",
                                int64_t(batch), std::max<int64_t>(dp, 1),
                                std::max<int64_t>(microbatches, 1)));
  llvm::StringMap<int64_t> dims;
  if (!parseDimSpecs(dimSpecs, dims))
    return 2;

  std::optional<mlir::weft::Topology> topology;
  if (int status = loadTopologyOption(topologyName, topology))
    return status;
  if (tp > topology->gpusPerNode)
    return refuse(llvm::formatv("--tp {0} would cross nodes: topology '{1}' "
                                "has {2} GPUs per node",
                                int64_t(tp), topology->name,
                                topology->gpusPerNode));
  int64_t fixedGpus = std::max<int64_t>(tp, 1) * std::max<int64_t>(pp, 1) *
                      std::max<int64_t>(dp, 1);
  int64_t available = maxGpus
                          ? std::min<int64_t>(maxGpus, topology->worldSize())
                          : topology->worldSize();
  if (fixedGpus > available)
    return refuse(llvm::formatv("the fixed degrees need {0} GPUs; only {1} "
                                "available",
                                fixedGpus, available));
  llvm::Expected<Calibration> calibration =
      calibrationFile.empty() ? calibrationForGpu(topology->gpu.type)
                              : loadCalibration(calibrationFile);
  if (!calibration) {
    llvm::errs() << "weft: error: " << llvm::toString(calibration.takeError())
                 << "\n";
    return calibrationFile.empty() ? 2 : 1;
  }

  DialectRegistry registry;
  mlir::weft::registerWeftDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  installDiagnosticHandler(ctx, model);
  PlanRequest request;
  request.modelPath = model;
  request.dims = dims;
  request.work = {batch, prompt, gen};
  request.dtype = dtype;
  request.maxGpus = maxGpus;
  request.objective = objective;
  request.tp = tp;
  request.pp = pp;
  request.dp = dp;
  request.microbatches = microbatches;
  auto planner = Planner::create(ctx, request);
  if (!planner) {
    llvm::errs() << "weft: error: " << llvm::toString(planner.takeError())
                 << "\n";
    return 1;
  }
  llvm::Expected<PlanResult> result = (*planner)->plan(*topology, *calibration);
  if (!result) {
    llvm::errs() << "weft: error: " << llvm::toString(result.takeError())
                 << "\n";
    return 1;
  }
  PlanReport report{model, *topology, *calibration, request, *result};
  if (!svg.empty()) {
    std::string error;
    if (!writeFrontierSvg(report, svg, error)) {
      llvm::errs() << "weft: error: " << error << "\n";
      return 1;
    }
  }
  if (json)
    printPlanJson(report, llvm::outs());
  else
    printPlanTable(report, top, explain, llvm::outs());
  if (result->fitting == 0) {
    llvm::outs().flush(); // the table first, then why it is empty
    llvm::errs() << "weft: error: " << noFitMessage(report) << "\n";
    return 1;
  }
  return 0;
}
