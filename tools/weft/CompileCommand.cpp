// `weft compile`: import, bind dims, fold, fuse; print or write the result.
#include "tools/weft/Commands.h"
#include "tools/weft/Options.h"
#include "tools/weft/PlanReport.h"

#include "compiler/cost/Planner.h"

#include "compiler/artifact/ArtifactWriter.h"
#include "compiler/codegen/Nvrtc.h"
#include "compiler/generate/Generation.h"
#include "compiler/onnx/GraphImporter.h"
#include "compiler/onnx/Importer.h"
#include "compiler/pipeline/Pipeline.h"
#include "compiler/topology/Topology.h"
#include "dialects/Weft/WeftOps.h"
#include "runtime/support/SafeFile.h"
#include "runtime/tokenizer/TokenizerFiles.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
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
    llvm::errs() << "weft: error: --parallel auto: "
                 << llvm::toString(std::move(err)) << "\n";
    return 1;
  };
  auto names = cost::findBatchSeqDims(model);
  if (!names)
    return fail(names.takeError());
  auto [batchDim, seqDim] = *names;
  if (!dims.contains(batchDim) || !dims.contains(seqDim)) {
    llvm::errs() << "weft: error: --parallel auto needs the batch "
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
    llvm::errs() << "weft: error: --parallel auto: "
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
    llvm::errs() << "weft: error: --target: "
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
    llvm::errs() << "weft: error: --target " << target
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

/// What `weft compile --generate` was asked for.
struct GenerateRequest {
  MLIRContext &ctx;
  std::string model;
  llvm::StringMap<int64_t> dims;
  std::string dtype;
  bool artifact; // else print the entries' modules
  std::string output;
  bool quiet, debugLocations;
  int64_t tp, pp, dp, microbatches;
  int64_t maxSeq;
  std::vector<int64_t> promptBuckets, batchBuckets;
  int64_t blockSize, prefillRows;
  bool packWeights;
  const mlir::weft::Topology &topology;
  std::string target;
  std::vector<std::pair<std::string, std::string>> tokenizerFiles;
  /// One past the tokenizer's largest id (0 without --tokenizer).
  int64_t tokenizerIds;
};

/// Checks a --*-buckets list: positive, at most `limit`; sorted, unique.
/// Returns 0, or 2 once the error is printed.
int checkBuckets(llvm::StringRef flag, std::vector<int64_t> &buckets,
                 int64_t limit) {
  for (int64_t b : buckets)
    if (b < 1 || b > limit) {
      llvm::errs() << "weft: error: --" << flag << ": " << b
                   << " must be between 1 and " << limit << "\n";
      return 2;
    }
  llvm::sort(buckets);
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return 0;
}

int compileForGeneration(GenerateRequest r) {
  auto refuse = [](const llvm::Twine &msg) {
    llvm::errs() << "weft: error: " << msg << "\n";
    return 2;
  };
  if (r.dp > 1 || r.microbatches > 1)
    return refuse("--generate: --dp and --microbatches are not supported "
                  "for generation (weft serve --dp N serves data-parallel "
                  "replicas)");
  constexpr int64_t kMaxSeqLimit = int64_t(1) << 20;
  if (r.maxSeq < 4 || r.maxSeq > kMaxSeqLimit)
    return refuse(
        llvm::formatv("--max-seq must be between 4 and {0}", kMaxSeqLimit));
  if (r.blockSize < 1 || r.blockSize > 1024)
    return refuse("--block-size must be between 1 and 1024");
  if (r.prefillRows < 1 || r.prefillRows > 1024)
    return refuse("--prefill-rows must be between 1 and 1024");
  mlir::weft::GenerationOptions g;
  g.maxSeq = r.maxSeq;
  g.blockSize = r.blockSize;
  g.prefillRows = r.prefillRows;
  if (r.promptBuckets.empty()) {
    g.promptBuckets.clear();
    for (int64_t b : {128, 512, 2048})
      g.promptBuckets.push_back(std::min<int64_t>(b, r.maxSeq));
  } else {
    g.promptBuckets = r.promptBuckets;
  }
  if (!r.batchBuckets.empty())
    g.batchBuckets = r.batchBuckets;
  if (int s = checkBuckets("prompt-buckets", g.promptBuckets, r.maxSeq))
    return s;
  if (int s = checkBuckets("batch-buckets", g.batchBuckets, 4096))
    return s;
  auto token = mlir::weft::findTokenInput(r.model);
  if (!token) {
    llvm::errs() << "weft: error: --generate: "
                 << llvm::toString(token.takeError()) << "\n";
    return 1;
  }
  for (const std::string &d : {token->batchDim, token->seqDim})
    if (!d.empty() && r.dims.contains(d))
      return refuse("--dim " + d +
                    ": --generate binds the token input's "
                    "dims itself (see --prompt-buckets, --batch-buckets)");

  PhaseTimer timer(2, r.quiet);
  // The graph at `seq` tokens of batch 1, fused and split for tp.
  auto compileAt = [&](int64_t seq) -> OwningOpRef<ModuleOp> {
    mlir::weft::ImportOptions options;
    options.dims = r.dims;
    if (!token->batchDim.empty())
      options.dims[token->batchDim] = 1;
    options.dims[token->seqDim] = seq;
    OwningOpRef<ModuleOp> m =
        mlir::weft::importOnnxModel(r.ctx, r.model, options);
    if (!m)
      return nullptr;
    PassManager pm(&r.ctx);
    mlir::weft::buildGraphPipeline(pm, r.dtype != "f32" ? r.dtype : "");
    mlir::weft::buildLayoutPipeline(pm, r.tp);
    if (failed(pm.run(*m)))
      return nullptr;
    return m;
  };
  std::vector<mlir::weft::GenerationEntry> entries =
      mlir::weft::generationEntries(g);
  std::vector<OwningOpRef<ModuleOp>> modules;
  bool ok = timer.run(
      llvm::formatv("compile {0} entry points", entries.size()).str(), [&] {
        // The tables of every position a sequence reaches, and where
        // positions enter the graph: what differs from the graph at 2.
        OwningOpRef<ModuleOp> reference = compileAt(g.maxSeq);
        OwningOpRef<ModuleOp> probe = compileAt(2);
        if (!reference || !probe)
          return false;
        auto refMain = reference->lookupSymbol<func::FuncOp>("main");
        auto positional = mlir::weft::findPositionalOperands(
            probe->lookupSymbol<func::FuncOp>("main"), 2, refMain, g.maxSeq);
        if (failed(positional))
          return false;
        for (const mlir::weft::GenerationEntry &e : entries) {
          OwningOpRef<ModuleOp> m = compileAt(e.tokens);
          if (!m)
            return false;
          auto f = m->lookupSymbol<func::FuncOp>("main");
          if (failed(mlir::weft::makeGenerationEntry(f, refMain, *positional, e,
                                                     g)))
            return false;
          // One gather per positional table, however many layers use it.
          PassManager cse(&r.ctx);
          cse.addPass(createCSEPass());
          if (failed(cse.run(*m)))
            return false;
          modules.push_back(std::move(m));
        }
        return true;
      });
  if (!ok)
    return 1;

  if (!r.artifact) {
    auto err = llvm::writeToOutput(r.output, [&](llvm::raw_ostream &os) {
      OpPrintingFlags flags;
      if (r.debugLocations)
        flags.enableDebugInfo();
      for (auto [e, m] : llvm::zip(entries, modules)) {
        os << "// entry point " << e.name << "\n";
        m->print(os, flags);
        os << "\n";
      }
      return llvm::Error::success();
    });
    if (err) {
      llvm::errs() << "weft: error: cannot write '" << r.output
                   << "': " << llvm::toString(std::move(err)) << "\n";
      return 1;
    }
    return 0;
  }

  func::FuncOp first = modules.front()->lookupSymbol<func::FuncOp>("main");
  ::weft::artifact::Generation gen;
  gen.set_max_seq(g.maxSeq);
  gen.set_block_size(g.blockSize);
  gen.set_blocks_per_seq((g.maxSeq + g.blockSize - 1) / g.blockSize);
  for (const mlir::weft::GenerationEntry &e : entries) {
    (e.prefill ? gen.mutable_prompt_buckets() : gen.mutable_batch_buckets())
        ->Add(e.bucket);
    ::weft::artifact::GenerationEntry *entry = gen.add_entries();
    entry->set_name(e.name);
    entry->set_prefill(e.prefill);
    entry->set_tokens(e.tokens);
    entry->set_rows(e.rows);
    entry->set_bucket(e.bucket);
  }
  gen.set_prefill_rows(g.prefillRows);
  gen.set_token_input(token->name);
  gen.set_logits_output(
      first.getResultAttrOfType<StringAttr>(1, "weft.name").str());
  int64_t layers = 0;
  first.walk([&](mlir::weft::PagedAttentionOp) { ++layers; });
  gen.set_layers(layers);
  gen.set_vocab(
      cast<RankedTensorType>(first.getResultTypes()[1]).getShape().back());
  // Every id the tokenizer makes must have a row in the model's tables.
  if (r.tokenizerIds > gen.vocab()) {
    llvm::errs() << "weft: error: --tokenizer: tokenizer.json has ids up to "
                 << r.tokenizerIds - 1 << ", but the model's logits have "
                 << gen.vocab() << " entries (ids 0 to " << gen.vocab() - 1
                 << ")\n";
    return 1;
  }

  mlir::weft::ArtifactOptions art;
  art.output = r.output;
  art.modelPath = r.model;
  art.packWeights = r.packWeights;
  art.dims = r.dims;
  art.topology = r.topology.name;
  art.tp = r.tp;
  art.pp = r.pp;
  art.cluster = &r.topology;
  art.target = r.target;
  art.tokenizerFiles = std::move(r.tokenizerFiles);
  for (auto [e, m] : llvm::zip(entries, modules))
    art.entries.emplace_back(e.name, *m);
  art.generation = gen;
  mlir::weft::ArtifactStats stats;
  art.stats = &stats;
  bool written = timer.run("plan and write artifact", [&] {
    return succeeded(mlir::weft::writeArtifact(*modules.front(), art));
  });
  if (written && r.target != "cpu" && !r.quiet)
    llvm::errs() << llvm::format(
        "      %zu kernels for %zu elementwise steps, %s (NVRTC %.2f s)\n",
        stats.kernels, stats.elementwiseSteps, r.target.c_str(),
        stats.nvrtcSeconds);
  return written ? 0 : 1;
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
  cl::opt<bool> generate(
      "generate",
      cl::desc("Compile for generation: prefill and decode entry points "
               "over one paged KV cache, for weft generate and weft serve "
               "(see docs/generation.md)"),
      cl::cat(cat));
  cl::opt<int64_t> maxSeq(
      "max-seq",
      cl::desc("With --generate: tokens a sequence may reach, prompt and "
               "output together (default 2048)"),
      cl::value_desc("N"), cl::init(2048), cl::cat(cat));
  cl::list<int64_t> promptBuckets(
      "prompt-buckets", cl::CommaSeparated,
      cl::desc("With --generate: the prefill entry points, by tokens "
               "(default 128,512,2048, each at most --max-seq)"),
      cl::value_desc("T,..."), cl::cat(cat));
  cl::list<int64_t> batchBuckets(
      "batch-buckets", cl::CommaSeparated,
      cl::desc("With --generate: the decode entry points, by sequences "
               "(default 1,8,32)"),
      cl::value_desc("B,..."), cl::cat(cat));
  cl::opt<int64_t> blockSize(
      "block-size",
      cl::desc("With --generate: tokens per KV-cache block (default 16)"),
      cl::value_desc("N"), cl::init(16), cl::cat(cat));
  cl::opt<int64_t> prefillRows(
      "prefill-rows",
      cl::desc("With --generate: prompts one prefill may pack (default 8)"),
      cl::value_desc("N"), cl::init(8), cl::cat(cat));
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
    llvm::errs() << "weft: error: no model given (see --help)\n";
    return 2;
  }
  if (emit.getNumOccurrences() == 0)
    emit = output != "-" && !llvm::StringRef(output).ends_with(".mlir")
               ? Emit::Artifact
               : Emit::Mlir;
  if (emit == Emit::Artifact && output == "-") {
    llvm::errs() << "weft: error: --emit=artifact needs -o DIR\n";
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
    llvm::errs() << "weft: error: --dtype must be f32, f16 or bf16, "
                    "not '"
                 << dtype << "'\n";
    return 2;
  }
  llvm::StringMap<int64_t> dims;
  if (!::weft::cli::parseDimSpecs(dimSpecs, dims))
    return 2;
  // The cluster, loaded and validated before the model is read.
  std::optional<mlir::weft::Topology> topology;
  if (int status = ::weft::cli::loadTopologyOption(topologyName, topology))
    return status;
  std::string targetName;
  if (int status = resolveTarget(target, *topology,
                                 quiet || emit != Emit::Artifact, targetName))
    return status;
  if (parallel.getNumOccurrences() && parallel != "auto") {
    llvm::errs() << "weft: error: --parallel takes 'auto', not '" << parallel
                 << "'\n";
    return 2;
  }
  if (parallel == "auto" &&
      (tp.getNumOccurrences() || pp.getNumOccurrences() ||
       dp.getNumOccurrences() || microbatches.getNumOccurrences())) {
    llvm::errs() << "weft: error: --parallel auto chooses --tp, --pp, "
                    "--dp and --microbatches; give either\n";
    return 2;
  }
  if (parallel == "auto")
    if (int status = chooseLayout(model, dims, dtype, *topology,
                                  calibrationFile, tp, pp, dp, microbatches))
      return status;
  if (tp < 1 || pp < 1 || dp < 1 || microbatches < 1) {
    llvm::errs() << "weft: error: --tp, --pp, --dp and "
                    "--microbatches must be at least 1\n";
    return 2;
  }
  int64_t world = tp * pp * dp;
  if (world > topology->worldSize()) {
    llvm::errs() << "weft: error: --tp " << tp << " x --pp " << pp << " x --dp "
                 << dp << " needs " << world << " GPUs; topology '"
                 << topology->name << "' has " << topology->worldSize() << "\n";
    return 2;
  }
  if (tp > topology->gpusPerNode) {
    llvm::errs() << "weft: error: --tp " << tp
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
  int64_t tokenizerIds = 0;
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
    tokenizerIds = files->tokenizer->vocabSize();
  }

  if (generate)
    return compileForGeneration(GenerateRequest{
        ctx,
        model,
        dims,
        dtype,
        emit == Emit::Artifact,
        output,
        quiet,
        debugLocations,
        tp,
        pp,
        dp,
        microbatches,
        maxSeq,
        std::vector<int64_t>(promptBuckets.begin(), promptBuckets.end()),
        std::vector<int64_t>(batchBuckets.begin(), batchBuckets.end()),
        blockSize,
        prefillRows,
        packWeights,
        *topology,
        targetName,
        std::move(tokenizerFiles),
        tokenizerIds});
  for (auto *o : std::initializer_list<cl::Option *>{
           &maxSeq, std::addressof(promptBuckets), std::addressof(batchBuckets),
           &blockSize, &prefillRows})
    if (o->getNumOccurrences()) {
      llvm::errs() << "weft: error: --" << o->ArgStr << " needs --generate\n";
      return 2;
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
