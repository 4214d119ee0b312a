// `weft inspect`: a readable summary of an artifact: the manifest, then per
// rank its arena, weight bytes, collectives and steps.
#include "tools/weft/Commands.h"
#include "tools/weft/Options.h"

#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/DType.h"
#include "runtime/artifact/artifact.pb.h"
#include "runtime/steps/StepArgs.h"
#include "tools/common/TokenizerInput.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <set>

namespace cl = llvm::cl;
namespace art = weft::artifact;

namespace {
std::string human(uint64_t bytes) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = bytes;
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return llvm::formatv("{0:F1} {1}", v, units[u]).str();
}

std::string shapeOf(const google::protobuf::RepeatedField<int64_t> &shape,
                    art::DType dtype) {
  std::string s = art::DType_Name(dtype) + "[";
  for (int i = 0; i < shape.size(); ++i) {
    if (i)
      s += 'x';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// The bytes this rank holds of a weight: its slice, or all of it.
uint64_t heldBytes(const art::WeightRef &w) {
  uint64_t n = weft::runtime::dtypeSize(w.dtype());
  if (w.slice_size_size())
    for (int64_t d : w.slice_size())
      n *= d;
  else
    for (int64_t d : w.shape())
      n *= d;
  return n;
}

/// A step's typed attributes, as " gemm {transpose_b: true has_bias:
/// true}" (fields at their defaults are left out); nothing for a kind
/// without attributes.
void printAttrs(const art::Step &s) {
  const google::protobuf::OneofDescriptor *attrs =
      art::Step::descriptor()->FindOneofByName("attrs");
  const google::protobuf::Reflection *r = s.GetReflection();
  if (const google::protobuf::FieldDescriptor *f =
          r->GetOneofFieldDescriptor(s, attrs))
    llvm::outs() << " " << f->name() << " {"
                 << r->GetMessage(s, f).ShortDebugString() << "}";
}

/// The entry points and the KV cache of a generation artifact.
void printGeneration(const art::Manifest &m) {
  const art::Generation &g = m.generation();
  llvm::outs() << "  generation: max_seq " << g.max_seq() << ", " << g.layers()
               << " attention layers, vocab " << g.vocab() << ", token input '"
               << g.token_input() << "', logits '" << g.logits_output() << "'\n"
               << "    KV cache: blocks of " << g.block_size() << " tokens, "
               << g.blocks_per_seq() << " per sequence at max_seq\n";
  for (auto [r, bytes] : llvm::enumerate(g.kv_block_bytes()))
    llvm::outs() << "      rank " << r << ": " << human(bytes) << " per block, "
                 << human(bytes * uint64_t(g.blocks_per_seq()))
                 << " per sequence at max_seq\n";
  for (const art::GenerationEntry &e : g.entries())
    llvm::outs() << "    entry point " << e.name() << ": " << e.tokens()
                 << " token slots, " << e.rows() << " sampled rows\n";
}

void printPlan(const art::Plan &plan, bool steps) {
  uint64_t weightBytes = 0;
  for (const art::WeightRef &w : plan.weights())
    weightBytes += heldBytes(w);
  std::map<std::string, int> kinds;
  int collectives = 0;
  for (const art::Step &s : plan.steps()) {
    ++kinds[art::Step::Kind_Name(s.kind())];
    collectives += s.kind() == art::Step::COLLECTIVE ||
                   s.kind() == art::Step::SEND || s.kind() == art::Step::RECV;
  }
  llvm::outs() << "  arena: " << human(plan.arena_bytes()) << " ("
               << plan.arena_bytes() << " bytes)\n"
               << "  weights: " << plan.weights_size() << " tensors, "
               << human(weightBytes) << " (" << weightBytes << " bytes)\n"
               << "  collectives: " << collectives << "\n"
               << "  steps: " << plan.steps_size() << " (";
  bool first = true;
  for (auto &[k, n] : kinds) {
    llvm::outs() << (first ? "" : ", ") << k << " " << n;
    first = false;
  }
  llvm::outs() << ")\n";
  std::set<std::string> kernels;
  for (const art::Step &s : plan.steps())
    if (!s.kernel().empty())
      kernels.insert(s.kernel());
  if (!kernels.empty())
    llvm::outs() << "  generated kernels: " << kernels.size() << "\n";
  // State and further entry points: shown only where a plan has them.
  // KV caches (state whose blocks the session chooses) are summed up.
  uint64_t kvCaches = 0, kvBlockBytes = 0;
  for (const art::Buffer &b : plan.buffers()) {
    if (b.kind() != art::Buffer::STATE)
      continue;
    if (b.shape_size() && b.shape(0) == 0) {
      ++kvCaches;
      kvBlockBytes += b.bytes();
      continue;
    }
    llvm::outs() << "  state: %" << b.id() << " '" << b.name() << "' "
                 << shapeOf(b.shape(), b.dtype()) << ", " << human(b.bytes())
                 << "\n";
  }
  if (kvCaches)
    llvm::outs() << "  KV cache: " << kvCaches << " state buffers, "
                 << human(kvBlockBytes) << " (" << kvBlockBytes
                 << " bytes) per block\n";
  for (const art::EntryPoint &e : plan.entry_points())
    llvm::outs() << "  entry point '" << e.name() << "': " << e.steps_size()
                 << " steps, " << e.inputs_size() << " inputs, "
                 << e.outputs_size() << " outputs\n";
  if (!steps)
    return;
  std::map<uint32_t, const art::Buffer *> byId;
  for (const art::Buffer &b : plan.buffers())
    byId[b.id()] = &b;
  auto list = [&](const google::protobuf::RepeatedPtrField<art::Step> &all) {
    for (auto [i, s] : llvm::enumerate(all)) {
      llvm::outs() << llvm::format("  %4d %-12s %-28s ", int(i),
                                   art::Step::Kind_Name(s.kind()).c_str(),
                                   s.name().c_str());
      for (int j = 0; j < s.inputs_size(); ++j) {
        const art::Buffer &b = *byId.at(s.inputs(j));
        llvm::outs() << (j ? ", " : "") << "%" << b.id();
      }
      llvm::outs() << " -> ";
      for (int j = 0; j < s.outputs_size(); ++j) {
        const art::Buffer &b = *byId.at(s.outputs(j));
        llvm::outs() << (j ? ", " : "") << "%" << b.id() << " "
                     << shapeOf(b.shape(), b.dtype()) << " @" << b.offset();
      }
      if (!s.kernel().empty())
        llvm::outs() << " kernel " << s.kernel();
      printAttrs(s);
      llvm::outs() << "\n";
    }
  };
  list(plan.steps());
  for (const art::EntryPoint &e : plan.entry_points()) {
    llvm::outs() << "  entry point '" << e.name() << "':\n";
    list(e.steps());
  }
}
/// The stored tokenizer files, then what a server needs from them: the
/// vocabulary size, BOS/EOS and the special tokens' ids.
bool printTokenizer(const std::string &dir, const art::Manifest &m) {
  llvm::outs() << "  tokenizer\n";
  for (const art::TokenizerFile &f : m.tokenizer_files())
    llvm::outs() << "    " << f.file() << " sha256 " << f.sha256().substr(0, 16)
                 << "...\n";
  auto files = weft::cli::loadTokenizer(dir);
  if (!files.ok()) {
    llvm::errs() << "weft: error: " << files.message() << "\n";
    return false;
  }
  const weft::tokenizer::Tokenizer &tok = *files->tokenizer;
  llvm::outs() << "    vocabulary " << tok.vocabSize() << " ids\n";
  auto named = [&](const char *what, const std::optional<std::string> &t) {
    if (!t)
      return;
    llvm::outs() << "    " << what << " " << *t;
    if (auto id = tok.tokenToId(*t))
      llvm::outs() << " (id " << *id << ")";
    llvm::outs() << "\n";
  };
  named("bos", files->bosToken);
  named("eos", files->eosToken);
  if (!files->eosTokenIds.empty()) {
    llvm::outs() << "    eos ids";
    for (uint32_t id : files->eosTokenIds)
      llvm::outs() << " " << id;
    llvm::outs() << "\n";
  }
  std::vector<uint32_t> special = tok.specialIds();
  llvm::outs() << "    special tokens " << special.size() << ":";
  for (uint32_t id : special)
    llvm::outs() << " " << *tok.idToToken(id) << "=" << id;
  llvm::outs() << "\n";
  if (files->chatTemplate)
    llvm::outs() << "    chat template " << files->chatTemplate->size()
                 << " bytes\n";
  return true;
}
} // namespace

int ::weft::cli::runInspect(int argc, char **argv) {
  cl::OptionCategory cat("weft inspect options");
  cl::opt<std::string> dir(cl::Positional, cl::desc("<model.weft>"),
                           cl::Required, cl::cat(cat));
  cl::opt<bool> noSteps("summary", cl::desc("Omit the step listing"),
                        cl::cat(cat));
  cl::HideUnrelatedOptions(cat);
  if (!::weft::cli::parseCommandLine(
          argc, argv, "print a readable summary of an artifact\n"))
    return 2;
  // The runtime's own checks first: inspect shows only what weft run would
  // accept, and fails as it would.
  auto artifact = weft::runtime::readArtifact(dir);
  if (!artifact.ok()) {
    llvm::errs() << "weft: error: " << artifact.message() << "\n";
    return 1;
  }
  const art::Manifest &m = artifact->manifest;
  // And every step as an executor binds it (arity, dtypes, shapes,
  // attributes), from the plans alone.
  for (const weft::runtime::RankPlan &r : artifact->ranks)
    if (auto s = weft::runtime::steps::checkPlanSteps(
            r.plan, {r.entry.rank(), m.world_size()});
        !s.ok()) {
      llvm::errs() << "weft: error: " << r.planPath << ": " << s.message()
                   << "\n";
      return 1;
    }
  llvm::outs() << "artifact " << dir << "\n"
               << "  format " << m.format_version() << ", compiler "
               << m.compiler_version() << ", target " << m.target()
               << ", compute " << art::DType_Name(m.compute_dtype()) << "\n"
               << "  source " << m.source_model() << " (sha256 "
               << m.source_sha256().substr(0, 16) << "...)\n"
               << "  topology " << m.topology() << ", world size "
               << m.world_size() << "\n";
  if (m.has_kernels()) {
    const art::KernelModule &k = m.kernels();
    llvm::outs() << "  kernels for " << k.arch() << "\n"
                 << "    source " << k.source_file() << " sha256 "
                 << k.source_sha256() << "\n"
                 << "    cubin  " << k.cubin_file() << " sha256 "
                 << k.cubin_sha256() << "\n"
                 << "    ptx    " << k.ptx_file() << " sha256 "
                 << k.ptx_sha256() << "\n";
  }
  if (m.tokenizer_files_size() && !printTokenizer(dir, m))
    return 1;
  if (m.has_generation())
    printGeneration(m);
  for (const art::TensorSpec &s : m.inputs())
    llvm::outs() << "  input  " << s.name() << " "
                 << shapeOf(s.shape(), s.dtype()) << "\n";
  for (const art::TensorSpec &s : m.outputs())
    llvm::outs() << "  output " << s.name() << " "
                 << shapeOf(s.shape(), s.dtype()) << "\n";
  for (const weft::runtime::RankPlan &r : artifact->ranks) {
    llvm::outs() << "rank " << r.entry.rank() << " (" << r.entry.plan_file()
                 << ")\n";
    printPlan(r.plan, !noSteps);
  }
  return 0;
}
