// `weft compile`: import, bind dims, fold, fuse; print or write the result.
#include "tools/weft/Commands.h"
#include "tools/weft/Options.h"
#include "tools/weft/PlanReport.h"

#include "compiler/cost/Planner.h"

#include "compiler/artifact/ArtifactWriter.h"
#include "compiler/codegen/Nvrtc.h"
#include "compiler/onnx/GraphImporter.h"
#include "compiler/onnx/Importer.h"
#include "compiler/pipeline/Pipeline.h"
#include "compiler/topology/Topology.h"
#include "runtime/support/SafeFile.h"
#include "runtime/tokenizer/TokenizerFiles.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace mlir;
namespace cl = llvm::cl;

namespace {
enum class Emit { Import, Mlir, Artifact };

/// Prints `[k/N] phase (seconds)` on stderr after each phase.
class PhaseTimer {
public:
  PhaseTimer(int total, bool quiet) : total(total), quiet(quiet) {}
  template <typename Fn> auto run(llvm::StringRef name, Fn fn) {
    auto start = std::chrono::steady_clock::now();
    auto result = fn();
    double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (!quiet)
      llvm::errs() << llvm::format("[%d/%d] %s (%.2f s)\n", ++done, total,
                                   name.str().c_str(), s);
    return result;
  }

private:
  int total, done = 0;
  bool quiet;
};

/// --parallel auto: the layout the cost model predicts the fastest prefill
/// for, at the batch and sequence length bound with --dim. Returns 0, or the
/// exit status once the error is printed.
int chooseLayout(const std::string &model, const llvm::StringMap<int64_t> &dims,
                 const std::string &dtype, const mlir::weft::Topology &topo,
                 const std::string &calibrationFile, cl::opt<int64_t> &tp,
                 cl::opt<int64_t> &pp, cl::opt<int64_t> &dp,
                 cl::opt<int64_t> &microbatches) {
  namespace cost = mlir::weft::cost;
  auto fail = [](llvm::Error err) {
    llvm::errs() << "weft compile: error: --parallel auto: "
                 << llvm::toString(std::move(err)) << "\n";
    return 1;
  };
  auto names = cost::findBatchSeqDims(model);
  if (!names)
    return fail(names.takeError());
  auto [batchDim, seqDim] = *names;
  if (!dims.contains(batchDim) || !dims.contains(seqDim)) {
    llvm::errs() << "weft compile: error: --parallel auto needs the batch "
                    "and sequence length: --dim "
                 << batchDim << "=B --dim " << seqDim << "=P\n";
    return 2;
  }
  llvm::Expected<cost::Calibration> cal =
      calibrationFile.empty() ? cost::calibrationForGpu(topo.gpu.type)
                              : cost::loadCalibration(calibrationFile);
  if (!cal)
    return fail(cal.takeError());
  cost::PlanRequest request;
  request.modelPath = model;
  for (const auto &d : dims)
    if (d.getKey() != batchDim && d.getKey() != seqDim)
      request.dims[d.getKey()] = d.getValue();
  request.work = {dims.lookup(batchDim), dims.lookup(seqDim), 0};
  request.dtype = dtype;
  DialectRegistry registry;
  mlir::weft::registerWeftDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  ::weft::cli::installDiagnosticHandler(ctx, model);
  auto planner = cost::Planner::create(ctx, request);
  if (!planner)
    return fail(planner.takeError());
  llvm::Expected<cost::PlanResult> result = (*planner)->plan(topo, *cal);
  if (!result)
    return fail(result.takeError());
  ::weft::cli::PlanReport report{model, topo, *cal, request, *result};
  if (result->fitting == 0) {
    llvm::errs() << "weft compile: error: --parallel auto: "
                 << ::weft::cli::noFitMessage(report) << "\n";
    return 1;
  }
  const cost::Prediction &best = result->layouts.front();
  tp = best.layout.tp;
  pp = best.layout.pp;
  dp = best.layout.dp;
  microbatches = best.layout.microbatches;
  llvm::errs() << llvm::formatv(
      "weft compile: --parallel auto: tp {0} x pp {1} x dp {2}, {3} "
      "micro-batch(es): predicted prefill {4:F2} ms, {5:F1} GiB per GPU "
      "(best of {6} layouts that fit)\n",
      best.layout.tp, best.layout.pp, best.layout.dp, best.layout.microbatches,
      best.prefillSeconds * 1e3,
      best.memory.total() / (1024.0 * 1024.0 * 1024.0), result->fitting);
  return 0;
}

/// Resolves `--target` (default: the topology's gpu.sm_arch) into `target`;
/// returns 0, or 2 once the error is printed. Without NVRTC in this build, a
/// GPU target given explicitly is refused and the default falls back to cpu
/// (with a note unless `quiet`).
int resolveTarget(const llvm::cl::opt<std::string> &option,
                  const mlir::weft::Topology &topology, bool quiet,
                  std::string &target) {
  bool given = option.getNumOccurrences() > 0;
  target = given ? option.getValue() : topology.gpu.smArch;
  if (target == "cpu")
    return 0;
  auto arch = mlir::weft::parseGpuArch(target);
  if (!arch) {
    llvm::errs() << "weft compile: error: --target: "
                 << llvm::toString(arch.takeError());
    if (!given)
      llvm::errs() << " (the GPU of topology '" << topology.name
                   << "'; give --target)";
    llvm::errs() << "\n";
    return 2;
  }
  if (mlir::weft::nvrtcAvailable())
    return 0;
  if (given) {
    llvm::errs() << "weft compile: error: --target " << target
                 << ": this weft was built without the CUDA toolkit "
                    "(WEFT_ENABLE_CUDA is off), so it cannot generate GPU "
                    "kernels; use --target cpu or rebuild with the toolkit\n";
    return 2;
  }
  if (!quiet)
    llvm::errs() << "weft compile: note: compiling for --target cpu: this "
                    "weft was built without the CUDA toolkit, so it cannot "
                    "generate kernels for "
                 << target << "\n";
  target = "cpu";
  return 0;
}
} // namespace

int ::weft::cli::runCompile(int argc, char **argv) {
  cl::OptionCategory cat("weft compile options");
  cl::opt<std::string> model(cl::Positional, cl::desc("<model.onnx>"),
                             cl::cat(cat));
  cl::list<std::string> dimSpecs(
      "dim",
      cl::desc("Bind a symbolic input dim: --dim NAME=VALUE "
               "(repeatable)"),
      cl::value_desc("NAME=VALUE"), cl::cat(cat));
  cl::opt<Emit> emit(
      "emit",
      cl::desc("What to produce (default: artifact with -o DIR, else mlir)"),
      cl::values(clEnumValN(Emit::Import, "import",
                            "the weft-dialect module right after import "
                            "and folding"),
                 clEnumValN(Emit::Mlir, "mlir",
                            "the weft-dialect module after fusion"),
                 clEnumValN(Emit::Artifact, "artifact",
                            "the artifact directory (manifest, per-rank "
                            "plans, weights by reference)")),
      cl::cat(cat));
  cl::opt<bool> packWeights(
      "pack-weights",
      cl::desc("Copy weights into per-rank safetensors files in the "
               "artifact instead of referencing the model's files"),
      cl::cat(cat));
  cl::opt<std::string> dtype(
      "dtype", cl::desc("Compute type: f32 (default), f16 or bf16"),
      cl::value_desc("f32|f16|bf16"), cl::init("f32"), cl::cat(cat));
  cl::opt<std::string> output("o", cl::desc("Output file ('-' for stdout)"),
                              cl::value_desc("file"), cl::init("-"),
                              cl::cat(cat));
  cl::opt<bool> quiet("quiet", cl::desc("Do not print phase timings"),
                      cl::cat(cat));
  cl::opt<bool> debugLocations(
      "debug-locations",
      cl::desc("Print op locations (the ONNX node each op came from)"),
      cl::cat(cat));
  cl::opt<bool> listOps("list-ops",
                        cl::desc("Print the supported ONNX op types and exit"),
                        cl::cat(cat));
  cl::opt<std::string> topologyName(
      "topology",
      cl::desc("The cluster to compile for: a preset (--list-topologies) or "
               "a topology YAML file (default: h100x1)"),
      cl::value_desc("NAME|FILE"), cl::init("h100x1"), cl::cat(cat));
  cl::opt<int64_t> tp(
      "tp",
      cl::desc("Tensor-parallel degree: split projections, attention heads "
               "and embeddings over this many ranks (default 1)"),
      cl::value_desc("N"), cl::init(1), cl::cat(cat));
  cl::opt<int64_t> pp("pp",
                      cl::desc("Pipeline stages: layers in pp groups of "
                               "about equal cost, activations sent between "
                               "them (default 1)"),
                      cl::value_desc("M"), cl::init(1), cl::cat(cat));
  cl::opt<int64_t> dp("dp",
                      cl::desc("Data-parallel replicas, each taking its "
                               "share of the batch (default 1)"),
                      cl::value_desc("K"), cl::init(1), cl::cat(cat));
  cl::opt<int64_t> microbatches(
      "microbatches",
      cl::desc("Micro-batches each replica's batch is cut into, to keep "
               "pipeline stages busy (default 1)"),
      cl::value_desc("U"), cl::init(1), cl::cat(cat));
  cl::opt<std::string> target(
      "target",
      cl::desc("What the artifact runs on: cpu (no GPU kernels), or a GPU "
               "architecture such as sm_90a or sm_80 to generate and "
               "compile its kernels for (default: the topology's GPU)"),
      cl::value_desc("cpu|sm_XX"), cl::cat(cat));
  cl::opt<std::string> parallel(
      "parallel",
      cl::desc("'auto': choose --tp, --pp, --dp and --microbatches with the "
               "cost model (lowest predicted prefill latency; see weft plan)"),
      cl::value_desc("auto"), cl::cat(cat));
  cl::opt<std::string> calibrationFile(
      "calibration",
      cl::desc("Cost-model constants for --parallel auto (default: the "
               "built-in file for the topology's GPU type)"),
      cl::value_desc("FILE"), cl::cat(cat));
  cl::opt<std::string> tokenizerDir(
      "tokenizer",
      cl::desc("A Hugging Face tokenizer directory (tokenizer.json, "
               "tokenizer_config.json, chat_template.jinja, "
               "generation_config.json) to store in the artifact"),
      cl::value_desc("DIR"), cl::cat(cat));
  cl::opt<bool> listTopologies("list-topologies",
                               cl::desc("Print the topology presets and exit"),
                               cl::cat(cat));
  cl::HideUnrelatedOptions(cat);
  if (!::weft::cli::parseCommandLine(
          argc, argv,
          "import an ONNX model and compile it for weft\n\n"
          "  weft compile model.onnx --dim batch=1 --dim seq=128 "
          "--emit=mlir\n"))
    return 2;

  if (listOps) {
    std::vector<std::string> ops;
    for (const auto &entry : mlir::weft::opImporters())
      ops.push_back(entry.getKey().str());
    llvm::sort(ops);
    for (const std::string &op : ops)
      llvm::outs() << op << "\n";
    return 0;
  }
  if (listTopologies) {
    for (const mlir::weft::TopologyPreset &preset :
         mlir::weft::topologyPresets())
      llvm::outs() << preset.name << "\n";
    return 0;
  }
  if (model.empty()) {
    llvm::errs() << "weft compile: error: no model given (see --help)\n";
    return 2;
  }
  if (emit.getNumOccurrences() == 0)
    emit = output != "-" && !llvm::StringRef(output).ends_with(".mlir")
               ? Emit::Artifact
               : Emit::Mlir;
  if (emit == Emit::Artifact && output == "-") {
    llvm::errs() << "weft compile: error: --emit=artifact needs -o DIR\n";
    return 2;
  }
  // Refuse an output weft must not replace (a device, a FIFO, a missing
  // parent directory) before any work; checked again when writing.
  if (output != "-") {
    auto s = emit == Emit::Artifact
                 ? ::weft::runtime::checkWritableDirectory(output)
                 : ::weft::runtime::checkWritableFile(output);
    if (!s.ok()) {
      llvm::errs() << "weft: error: " << s.message() << "\n";
      return 2;
    }
  }
  if (dtype != "f32" && dtype != "f16" && dtype != "bf16") {
    llvm::errs() << "weft compile: error: --dtype must be f32, f16 or bf16, "
                    "not '"
                 << dtype << "'\n";
    return 2;
  }
  llvm::StringMap<int64_t> dims;
  if (!::weft::cli::parseDimSpecs(dimSpecs, dims))
    return 2;
  // The cluster, loaded and validated before the model is read.
  std::optional<mlir::weft::Topology> topology;
  if (int status = ::weft::cli::loadTopologyOption("weft compile", topologyName,
                                                   topology))
    return status;
  std::string targetName;
  if (int status = resolveTarget(target, *topology,
                                 quiet || emit != Emit::Artifact, targetName))
    return status;
  if (parallel.getNumOccurrences() && parallel != "auto") {
    llvm::errs() << "weft compile: error: --parallel takes 'auto', not '"
                 << parallel << "'\n";
    return 2;
  }
  if (parallel == "auto" &&
      (tp.getNumOccurrences() || pp.getNumOccurrences() ||
       dp.getNumOccurrences() || microbatches.getNumOccurrences())) {
    llvm::errs() << "weft compile: error: --parallel auto chooses --tp, --pp, "
                    "--dp and --microbatches; give either\n";
    return 2;
  }
  if (parallel == "auto")
    if (int status = chooseLayout(model, dims, dtype, *topology,
                                  calibrationFile, tp, pp, dp, microbatches))
      return status;
  if (tp < 1 || pp < 1 || dp < 1 || microbatches < 1) {
    llvm::errs() << "weft compile: error: --tp, --pp, --dp and "
                    "--microbatches must be at least 1\n";
    return 2;
  }
  int64_t world = tp * pp * dp;
  if (world > topology->worldSize()) {
    llvm::errs() << "weft compile: error: --tp " << tp << " x --pp " << pp
                 << " x --dp " << dp << " needs " << world
                 << " GPUs; topology '" << topology->name << "' has "
                 << topology->worldSize() << "\n";
    return 2;
  }
  if (tp > topology->gpusPerNode) {
    llvm::errs() << "weft compile: error: --tp " << tp
                 << " would cross nodes: topology '" << topology->name
                 << "' has " << topology->gpusPerNode
                 << " GPUs per node, and tensor parallelism stays inside "
                    "a node\n";
    return 2;
  }

  DialectRegistry registry;
  mlir::weft::registerWeftDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  ::weft::cli::installDiagnosticHandler(ctx, model);

  // Checked before the import: an unusable tokenizer fails in a second,
  // not after the model is compiled.
  std::vector<std::pair<std::string, std::string>> tokenizerFiles;
  if (!tokenizerDir.empty()) {
    if (emit != Emit::Artifact) {
      llvm::errs() << "weft: error: --tokenizer needs --emit=artifact\n";
      return 2;
    }
    auto files = ::weft::tokenizer::TokenizerFiles::fromDirectory(tokenizerDir);
    if (!files.ok()) {
      llvm::errs() << "weft: error: " << files.message() << "\n";
      return 1;
    }
    for (const std::string &name : ::weft::tokenizer::tokenizerFileNames())
      if (files->contents.count(name))
        tokenizerFiles.emplace_back(name, files->contents.at(name));
  }

  PhaseTimer timer(emit == Emit::Import ? 2 : 3, quiet);
  bool lowPrecision = dtype != "f32";
  mlir::weft::ImportOptions options;
  options.dims = dims;
  options.batchChunks = dp * microbatches;
  OwningOpRef<ModuleOp> module = timer.run("import and fold", [&] {
    return mlir::weft::importOnnxModel(ctx, model, options);
  });
  if (!module)
    return 1;

  if (emit != Emit::Import) {
    PassManager pm(&ctx);
    mlir::weft::buildGraphPipeline(pm, lowPrecision ? dtype.getValue() : "");
    mlir::weft::buildLayoutPipeline(pm, tp);
    if (failed(timer.run("fuse", [&] { return pm.run(*module); })))
      return 1;
  }

  if (emit == Emit::Artifact) {
    mlir::weft::ArtifactOptions art;
    art.output = output;
    art.modelPath = model;
    art.packWeights = packWeights;
    art.dims = dims;
    art.topology = topology->name;
    art.tp = tp;
    art.pp = pp;
    art.dp = dp;
    art.microbatches = microbatches;
    art.cluster = &*topology;
    art.target = targetName;
    art.tokenizerFiles = std::move(tokenizerFiles);
    mlir::weft::ArtifactStats stats;
    art.stats = &stats;
    bool written = timer.run("plan and write artifact", [&] {
      return succeeded(mlir::weft::writeArtifact(*module, art));
    });
    if (written && targetName != "cpu" && !quiet)
      llvm::errs() << llvm::format(
          "      %zu kernels for %zu elementwise steps, %s (NVRTC %.2f s)\n",
          stats.kernels, stats.elementwiseSteps, targetName.c_str(),
          stats.nvrtcSeconds);
    return written ? 0 : 1;
  }
  bool ok = timer.run("write", [&] {
    if (output != "-")
      if (auto s = ::weft::runtime::checkWritableFile(output); !s.ok()) {
        llvm::errs() << "weft: error: " << s.message() << "\n";
        return false;
      }
    llvm::Error err = llvm::writeToOutput(output, [&](llvm::raw_ostream &os) {
      OpPrintingFlags flags;
      if (debugLocations)
        flags.enableDebugInfo();
      module->print(os, flags);
      os << "\n";
      return llvm::Error::success();
    });
    if (err) {
      llvm::errs() << "weft: error: cannot write '" << output
                   << "': " << llvm::toString(std::move(err)) << "\n";
      return false;
    }
    return true;
  });
  return ok ? 0 : 1;
}
