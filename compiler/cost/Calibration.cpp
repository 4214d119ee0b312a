// Reads calibration YAML: the document is flattened into `a.b[i].c` paths
// with their lines, then each field is taken by path; a path left over is an
// unknown field.
#include "compiler/cost/Calibration.h"

#include "runtime/support/SafeFile.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/YAMLParser.h"

#include <cmath>
#include <optional>

using namespace llvm;
using namespace mlir::weft::cost;

namespace {
struct Scalar {
  std::string value;
  unsigned line;
  bool used = false;
};

class Reader {
public:
  Reader(StringRef text, StringRef fileName) : text(text), fileName(fileName) {}

  Expected<Calibration> run();

private:
  unsigned lineOf(const yaml::Node *node) const {
    const char *p = node ? node->getSourceRange().Start.getPointer() : nullptr;
    if (!p || p < text.begin() || p > text.end())
      return 1;
    return 1 + std::count(text.begin(), p, '\n');
  }
  Error fail(unsigned line, StringRef path, const Twine &message) const {
    return createStringError(inconvertibleErrorCode(),
                             fileName + ":" + Twine(line) + ": " + path + ": " +
                                 message);
  }
  Error flatten(yaml::Node *node, const std::string &path);
  Expected<std::string> string(StringRef path);
  Expected<double> number(StringRef path, bool fraction = false);
  Expected<int64_t> integer(StringRef path);
  bool has(StringRef path) const { return scalars.contains(path); }
  /// The line of `path`'s key, or of its nearest enclosing mapping's.
  unsigned sectionLine(StringRef path) const {
    for (StringRef p = path; !p.empty(); p = p.rsplit('.').first) {
      if (auto it = sections.find(p); it != sections.end())
        return it->second;
      if (!p.contains('.'))
        break;
    }
    return 1;
  }

  StringRef text, fileName;
  StringMap<Scalar> scalars;
  StringMap<unsigned> sections; // the line of each key
  unsigned lastLine = 1;
};

Error Reader::flatten(yaml::Node *node, const std::string &path) {
  if (auto *map = dyn_cast_or_null<yaml::MappingNode>(node)) {
    for (yaml::KeyValueNode &kv : *map) {
      auto *key = dyn_cast_or_null<yaml::ScalarNode>(kv.getKey());
      if (!key)
        return fail(lineOf(kv.getKey()), path, "keys must be field names");
      std::string sub = path.empty() ? key->getRawValue().str()
                                     : (path + "." + key->getRawValue()).str();
      if (scalars.contains(sub) ||
          llvm::any_of(scalars.keys(),
                       [&](StringRef k) { return k.starts_with(sub + "."); }))
        return fail(lineOf(key), sub, "given more than once");
      sections[sub] = lineOf(key);
      if (Error e = flatten(kv.getValue(), sub))
        return e;
    }
    return Error::success();
  }
  if (auto *seq = dyn_cast_or_null<yaml::SequenceNode>(node)) {
    int64_t i = 0;
    for (yaml::Node &item : *seq)
      if (Error e = flatten(&item, formatv("{0}[{1}]", path, i++).str()))
        return e;
    return Error::success();
  }
  if (auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node)) {
    SmallString<64> storage;
    scalars[path] = {scalar->getValue(storage).str(), lineOf(node)};
    return Error::success();
  }
  if (auto *block = dyn_cast_or_null<yaml::BlockScalarNode>(node)) {
    scalars[path] = {block->getValue().str(), lineOf(node)};
    return Error::success();
  }
  if (isa_and_nonnull<yaml::NullNode>(node))
    return Error::success(); // an empty value: its fields are missing
  return fail(lineOf(node), path, "must be a value, a mapping or a list");
}

Expected<std::string> Reader::string(StringRef path) {
  auto it = scalars.find(path);
  if (it == scalars.end())
    return fail(sectionLine(path), path, "required field is missing");
  it->second.used = true;
  lastLine = it->second.line;
  if (StringRef(it->second.value).trim().empty())
    return fail(it->second.line, path, "must not be empty");
  return it->second.value;
}

Expected<double> Reader::number(StringRef path, bool fraction) {
  Expected<std::string> s = string(path);
  if (!s)
    return s.takeError();
  double v;
  if (StringRef(*s).trim().getAsDouble(v) || !std::isfinite(v) || v <= 0)
    return fail(lastLine, path,
                "must be a positive number, got '" + Twine(*s) + "'");
  if (fraction && v > 1)
    return fail(lastLine, path,
                "must be a fraction in (0, 1], got '" + Twine(*s) + "'");
  return v;
}

Expected<int64_t> Reader::integer(StringRef path) {
  Expected<std::string> s = string(path);
  if (!s)
    return s.takeError();
  long long v;
  if (StringRef(*s).trim().getAsInteger(10, v) || v <= 0)
    return fail(lastLine, path,
                "must be a positive integer, got '" + Twine(*s) + "'");
  return v;
}

Expected<Calibration> Reader::run() {
  SourceMgr sm;
  std::optional<std::string> parseError;
  sm.setDiagHandler(
      [](const SMDiagnostic &d, void *ctx) {
        auto *err = static_cast<std::optional<std::string> *>(ctx);
        if (!*err)
          *err = formatv("{0}: {1}", d.getLineNo(), d.getMessage()).str();
      },
      &parseError);
  yaml::Stream stream(text, sm);
  auto doc = stream.begin();
  if (doc == stream.end() || !doc->getRoot())
    return createStringError(inconvertibleErrorCode(),
                             fileName + ":1: the file is empty");
  yaml::Node *root = doc->getRoot();
  if (!isa<yaml::MappingNode>(root) && !parseError)
    return fail(lineOf(root), "(top level)", "must be a mapping");
  if (Error e = flatten(root, ""))
    return std::move(e);
  if (parseError)
    return createStringError(inconvertibleErrorCode(),
                             fileName + ":" + *parseError);
  if (++doc != stream.end())
    return fail(1, "(top level)", "only one YAML document is allowed");

  Calibration c;
  // Each read fails with its own message; the first one is returned.
  auto get = [](auto expected, auto &out) -> Error {
    if (!expected)
      return expected.takeError();
    out = *expected;
    return Error::success();
  };
  if (Error e = get(integer("version"), c.version))
    return std::move(e);
  if (c.version != 1)
    return fail(lastLine, "version",
                "unsupported version " + Twine(c.version) + " (expected 1)");
  if (Error e = get(string("gpu"), c.gpu))
    return std::move(e);
  std::pair<StringRef, std::string *> strings[] = {
      {"measured.date", &c.measuredDate},
      {"measured.source", &c.measuredSource}};
  for (auto [path, out] : strings)
    if (Error e = get(string(path), *out))
      return std::move(e);
  if (!has("matmul.points[0].m"))
    return fail(sectionLine("matmul.points"), "matmul.points",
                "needs at least one point");
  for (int64_t i = 0; has(formatv("matmul.points[{0}].m", i).str()); ++i) {
    GemmPoint p;
    std::string base = formatv("matmul.points[{0}].", i).str();
    if (Error e = get(integer(base + "m"), p.m))
      return std::move(e);
    if (Error e = get(integer(base + "n"), p.n))
      return std::move(e);
    if (Error e = get(integer(base + "k"), p.k))
      return std::move(e);
    if (Error e = get(number(base + "tflops"), p.tflops))
      return std::move(e);
    c.gemm.push_back(p);
  }
  std::pair<StringRef, double *> numbers[] = {
      {"hbm.copy_tb_per_s", &c.hbmTbPerS},
      {"kernel.launch_us", &c.launchUs},
      {"kernel.graph_node_us", &c.graphNodeUs},
      {"collectives.nvlink.base_us", &c.nvlink.baseUs},
      {"collectives.fabric.base_us", &c.fabric.baseUs},
      {"memory.context_mib", &c.contextMib},
      {"memory.workspace_mib", &c.workspaceMib},
      {"memory.nccl_mib", &c.ncclMib},
      {"memory.cuda_graph_mib", &c.cudaGraphMib}};
  for (auto [path, out] : numbers)
    if (Error e = get(number(path), *out))
      return std::move(e);
  std::pair<StringRef, double *> fractions[] = {
      {"attention.efficiency", &c.attentionEfficiency},
      {"collectives.nvlink.ring.busbw_efficiency", &c.nvlink.ringEfficiency},
      {"collectives.nvlink.tree.busbw_efficiency", &c.nvlink.treeEfficiency},
      {"collectives.fabric.ring.busbw_efficiency", &c.fabric.ringEfficiency},
      {"collectives.fabric.tree.busbw_efficiency", &c.fabric.treeEfficiency}};
  for (auto [path, out] : fractions)
    if (Error e = get(number(path, /*fraction=*/true), *out))
      return std::move(e);
  // Optional measured all-reduce times.
  std::pair<StringRef, LinkCalibration *> tiers[] = {{"nvlink", &c.nvlink},
                                                     {"fabric", &c.fabric}};
  for (auto [tier, link] : tiers)
    for (int64_t i = 0;; ++i) {
      std::string base =
          formatv("collectives.{0}.all_reduce[{1}].", tier, i).str();
      const char *fields[] = {"ranks", "bytes", "us"};
      const char **given =
          llvm::find_if(fields, [&](const char *f) { return has(base + f); });
      if (given == std::end(fields))
        break;
      // A field missing from an item is reported at the item's line.
      for (const char *field : fields)
        if (!has(base + field))
          return fail(scalars.lookup(base + *given).line, base + field,
                      "required field is missing");
      AllReducePoint p;
      int64_t bytes = 0;
      if (Error e = get(integer(base + "ranks"), p.ranks))
        return std::move(e);
      if (p.ranks < 2)
        return fail(lastLine, base + "ranks",
                    "must be at least 2, got " + Twine(p.ranks));
      if (Error e = get(integer(base + "bytes"), bytes))
        return std::move(e);
      p.bytes = double(bytes);
      if (Error e = get(number(base + "us"), p.us))
        return std::move(e);
      if (llvm::any_of(link->allReduce, [&](const AllReducePoint &q) {
            return q.ranks == p.ranks && q.bytes == p.bytes;
          }))
        return fail(lastLine, base + "bytes",
                    formatv("{0} bytes over {1} GPUs given more than once",
                            bytes, p.ranks));
      link->allReduce.push_back(p);
    }
  for (LinkCalibration *link : {&c.nvlink, &c.fabric})
    llvm::sort(link->allReduce);
  if (has("matmul.sustained_efficiency"))
    if (Error e = get(number("matmul.sustained_efficiency", /*fraction=*/true),
                      c.gemmSustainedEfficiency))
      return std::move(e);
  if (has("hbm.kernel_efficiency"))
    if (Error e = get(number("hbm.kernel_efficiency", /*fraction=*/true),
                      c.memoryKernelEfficiency))
      return std::move(e);
  for (auto &entry : scalars)
    if (!entry.second.used)
      return fail(entry.second.line, entry.getKey(), "unknown field");
  return c;
}
} // namespace

Expected<Calibration> mlir::weft::cost::parseCalibration(StringRef text,
                                                         StringRef fileName) {
  return Reader(text, fileName).run();
}

Expected<Calibration> mlir::weft::cost::loadCalibration(StringRef path) {
  // A regular file only: a FIFO or device would block or never end.
  auto text = ::weft::runtime::readRegularFile(path.str());
  if (!text.ok())
    return createStringError(inconvertibleErrorCode(),
                             "calibration: " + text.message());
  return parseCalibration(*text, path);
}

Expected<Calibration> mlir::weft::cost::calibrationForGpu(StringRef gpuType) {
  for (const CalibrationPreset &preset : calibrationPresets()) {
    Expected<Calibration> c = parseCalibration(preset.text, preset.path);
    if (!c)
      return c.takeError();
    if (gpuType.starts_with_insensitive(c->gpu))
      return c;
  }
  std::string known;
  for (const CalibrationPreset &preset : calibrationPresets())
    known += (known.empty() ? "" : ", ") + preset.name.str();
  return createStringError(inconvertibleErrorCode(),
                           "no calibration for GPU type '" + gpuType +
                               "' (built in: " + known +
                               "); give one with --calibration FILE");
}
