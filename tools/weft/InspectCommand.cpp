// `weft inspect`: a readable summary of an artifact: the manifest, then per
// rank its arena, weight bytes, collectives and steps.
#include "tools/weft/Commands.h"

#include "runtime/artifact/DType.h"
#include "runtime/artifact/artifact.pb.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
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

bool readProto(const std::string &path, google::protobuf::Message &msg) {
  auto buf = llvm::MemoryBuffer::getFile(path, false, false);
  if (!buf) {
    llvm::errs() << "weft: error: cannot read '" << path
                 << "': " << buf.getError().message() << "\n";
    return false;
  }
  if (!msg.ParseFromArray((*buf)->getBufferStart(),
                          int((*buf)->getBufferSize()))) {
    llvm::errs() << "weft: error: '" << path << "' is not a valid "
                 << msg.GetTypeName() << "\n";
    return false;
  }
  return true;
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
  for (const art::Buffer &b : plan.buffers())
    if (b.kind() == art::Buffer::STATE)
      llvm::outs() << "  state: %" << b.id() << " '" << b.name() << "' "
                   << shapeOf(b.shape(), b.dtype()) << ", " << human(b.bytes())
                   << "\n";
  for (const art::EntryPoint &e : plan.entry_points())
    llvm::outs() << "  entry point '" << e.name() << "': " << e.steps_size()
                 << " steps, " << e.inputs_size() << " inputs, "
                 << e.outputs_size() << " outputs\n";
  if (!steps)
    return;
  for (auto [i, s] : llvm::enumerate(plan.steps())) {
    llvm::outs() << llvm::format("  %4d %-12s %-28s ", int(i),
                                 art::Step::Kind_Name(s.kind()).c_str(),
                                 s.name().c_str());
    for (int j = 0; j < s.inputs_size(); ++j) {
      const art::Buffer &b = plan.buffers(s.inputs(j));
      llvm::outs() << (j ? ", " : "") << "%" << b.id();
    }
    llvm::outs() << " -> ";
    for (int j = 0; j < s.outputs_size(); ++j) {
      const art::Buffer &b = plan.buffers(s.outputs(j));
      llvm::outs() << (j ? ", " : "") << "%" << b.id() << " "
                   << shapeOf(b.shape(), b.dtype()) << " @" << b.offset();
    }
    if (!s.kernel().empty())
      llvm::outs() << " kernel " << s.kernel();
    printAttrs(s);
    llvm::outs() << "\n";
  }
}
} // namespace

int ::weft::cli::runInspect(int argc, char **argv) {
  cl::OptionCategory cat("weft inspect options");
  cl::opt<std::string> dir(cl::Positional, cl::desc("<model.weft>"),
                           cl::Required, cl::cat(cat));
  cl::opt<bool> noSteps("summary", cl::desc("Omit the step listing"),
                        cl::cat(cat));
  cl::HideUnrelatedOptions(cat);
  if (!cl::ParseCommandLineOptions(argc, argv,
                                   "print a readable summary of an artifact\n",
                                   &llvm::errs()))
    return 2;
  art::Manifest m;
  if (!readProto(dir + "/manifest.pb", m))
    return 1;
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
  for (const art::TensorSpec &s : m.inputs())
    llvm::outs() << "  input  " << s.name() << " "
                 << shapeOf(s.shape(), s.dtype()) << "\n";
  for (const art::TensorSpec &s : m.outputs())
    llvm::outs() << "  output " << s.name() << " "
                 << shapeOf(s.shape(), s.dtype()) << "\n";
  for (const art::RankEntry &r : m.ranks()) {
    art::Plan plan;
    if (!readProto(dir + "/" + r.plan_file(), plan))
      return 1;
    llvm::outs() << "rank " << r.rank() << " (" << r.plan_file() << ")\n";
    printPlan(plan, !noSteps);
  }
  return 0;
}
