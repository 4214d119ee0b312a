// Parses and validates topology YAML with LLVM's YAML parser; every error
// names the file, the line and the field.
#include "compiler/topology/Topology.h"

#include "runtime/support/SafeFile.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/YAMLParser.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <functional>
#include <limits>
#include <optional>

using namespace llvm;
using namespace mlir::weft;
namespace yaml = llvm::yaml;

char UnknownTopologyError::ID = 0;

void UnknownTopologyError::log(raw_ostream &os) const {
  os << "unknown topology '" << name
     << "': not a preset and no such file; presets: ";
  llvm::interleaveComma(topologyPresets(), os,
                        [&](const TopologyPreset &p) { os << p.name; });
}

StringRef mlir::weft::toString(Topology::IntraNodeKind kind) {
  switch (kind) {
  case Topology::IntraNodeKind::None:
    return "none";
  case Topology::IntraNodeKind::NVLink:
    return "nvlink";
  case Topology::IntraNodeKind::NVSwitch:
    return "nvswitch";
  case Topology::IntraNodeKind::PCIe:
    return "pcie";
  }
  llvm_unreachable("unknown intra-node kind");
}

StringRef mlir::weft::toString(Topology::InterNodeKind kind) {
  switch (kind) {
  case Topology::InterNodeKind::None:
    return "none";
  case Topology::InterNodeKind::InfiniBand:
    return "infiniband";
  case Topology::InterNodeKind::Ethernet:
    return "ethernet";
  }
  llvm_unreachable("unknown inter-node kind");
}

namespace {
constexpr int64_t kFormatVersion = 1;

/// One key of a mapping: whether it must be present and how its value is read
/// (the value, the key's location for values without one, the field's path).
struct Field {
  StringRef name;
  bool required;
  std::function<bool(yaml::Node *, SMLoc, StringRef)> read;
};

/// The keys seen in a mapping, with where each was.
using Seen = StringMap<SMLoc>;

/// How a value is described in an error: its text, or what kind of node it is.
std::string describe(yaml::Node *node) {
  if (auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node))
    return ("'" + scalar->getRawValue().rtrim() + "'").str();
  if (isa_and_nonnull<yaml::MappingNode>(node))
    return "a mapping";
  if (isa_and_nonnull<yaml::SequenceNode>(node))
    return "a list";
  if (isa_and_nonnull<yaml::BlockScalarNode>(node))
    return "a block scalar";
  if (isa_and_nonnull<yaml::AliasNode>(node))
    return "an alias";
  return "nothing";
}

bool isQuoted(StringRef raw) {
  return raw.starts_with("'") || raw.starts_with("\"");
}

class Parser {
public:
  Parser(StringRef text, StringRef fileName) : text(text), fileName(fileName) {}

  Expected<Topology> run();

private:
  unsigned lineOf(SMLoc loc) const {
    const char *p = loc.getPointer();
    if (!p || p < text.begin() || p > text.end())
      return 1;
    return 1 + std::count(text.begin(), p, '\n');
  }
  /// Where a value is, or its key's location for an empty value or an alias.
  SMLoc locOf(yaml::Node *node, SMLoc keyLoc) const {
    // An empty value's node starts at the next token, often on a later line.
    if (!node || isa<yaml::NullNode, yaml::AliasNode>(node))
      return keyLoc;
    SMLoc loc = node->getSourceRange().Start;
    const char *p = loc.getPointer();
    return p && p >= text.begin() && p < text.end() ? loc : keyLoc;
  }
  /// Records the first error; always returns false.
  bool fail(SMLoc loc, StringRef path, const Twine &message) {
    if (!error) {
      std::string out;
      raw_string_ostream os(out);
      os << fileName << ":" << lineOf(loc) << ": ";
      if (!path.empty())
        os << path << ": ";
      os << message;
      error = std::move(out);
    }
    return false;
  }

  bool readMapping(yaml::Node *node, SMLoc keyLoc, StringRef path,
                   ArrayRef<Field> fields, Seen &seen);
  bool readString(yaml::Node *node, SMLoc keyLoc, StringRef path,
                  std::string &out);
  bool readNumber(yaml::Node *node, SMLoc keyLoc, StringRef path, double &out);
  bool readInteger(yaml::Node *node, SMLoc keyLoc, StringRef path,
                   int64_t &out);
  template <typename Kind>
  bool readKind(yaml::Node *node, SMLoc keyLoc, StringRef path,
                ArrayRef<std::pair<StringRef, Kind>> kinds, Kind &out);

  bool readGpu(yaml::Node *node, SMLoc keyLoc, StringRef path);
  bool readIntraNode(yaml::Node *node, SMLoc keyLoc, StringRef path);
  bool readInterNode(yaml::Node *node, SMLoc keyLoc, StringRef path);
  bool checkTopology();

  StringRef text, fileName;
  std::optional<std::string> error;
  Topology topo;
  // gpus_per_node may come after inter_node: nics_per_gpu is multiplied out
  // in checkTopology.
  int64_t nicsPerGpu = 0;
  Seen rootSeen, intraSeen, interSeen;
};

bool Parser::readMapping(yaml::Node *node, SMLoc keyLoc, StringRef path,
                         ArrayRef<Field> fields, Seen &seen) {
  auto *mapping = dyn_cast_or_null<yaml::MappingNode>(node);
  if (!mapping)
    return fail(locOf(node, keyLoc), path,
                (path.empty() ? "the top level must be a mapping, got "
                              : "must be a mapping, got ") +
                    describe(node));
  for (yaml::KeyValueNode &kv : *mapping) {
    auto *key = dyn_cast_or_null<yaml::ScalarNode>(kv.getKey());
    if (!key || isQuoted(key->getRawValue()))
      return fail(locOf(kv.getKey(), keyLoc), path,
                  "keys must be plain field names, got " +
                      describe(kv.getKey()));
    StringRef name = key->getRawValue();
    std::string fieldPath =
        path.empty() ? name.str() : (path + "." + name).str();
    SMLoc loc = key->getSourceRange().Start;
    const Field *field =
        llvm::find_if(fields, [&](const Field &f) { return f.name == name; });
    if (field == fields.end()) {
      std::string expected;
      raw_string_ostream os(expected);
      llvm::interleaveComma(fields, os, [&](const Field &f) { os << f.name; });
      return fail(loc, fieldPath,
                  "unknown field (expected one of " + expected + ")");
    }
    if (!seen.try_emplace(name, loc).second)
      return fail(loc, fieldPath, "given more than once");
    yaml::Node *value = kv.getValue();
    if (value && !value->getRawTag().empty())
      return fail(locOf(value, loc), fieldPath,
                  "YAML tags are not supported, got '" + value->getRawTag() +
                      "'");
    if (!field->read(value, loc, fieldPath))
      return false;
  }
  for (const Field &f : fields)
    if (f.required && !seen.contains(f.name))
      return fail(keyLoc,
                  path.empty() ? f.name.str() : (path + "." + f.name).str(),
                  "required field is missing");
  return true;
}

bool Parser::readString(yaml::Node *node, SMLoc keyLoc, StringRef path,
                        std::string &out) {
  auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node);
  if (!scalar)
    return fail(locOf(node, keyLoc), path,
                "must be a string, got " + describe(node));
  SmallString<64> storage;
  out = scalar->getValue(storage).str();
  if (out.empty())
    return fail(locOf(node, keyLoc), path, "must not be empty");
  return true;
}

bool Parser::readNumber(yaml::Node *node, SMLoc keyLoc, StringRef path,
                        double &out) {
  auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node);
  StringRef raw = scalar ? scalar->getRawValue() : StringRef();
  if (!scalar || isQuoted(raw) || raw.getAsDouble(out) || !std::isfinite(out) ||
      out <= 0)
    return fail(locOf(node, keyLoc), path,
                "must be a positive number, got " + describe(node));
  return true;
}

bool Parser::readInteger(yaml::Node *node, SMLoc keyLoc, StringRef path,
                         int64_t &out) {
  auto *scalar = dyn_cast_or_null<yaml::ScalarNode>(node);
  StringRef raw = scalar ? scalar->getRawValue() : StringRef();
  if (!scalar || raw.getAsInteger(10, out) || out <= 0)
    return fail(locOf(node, keyLoc), path,
                "must be a positive integer, got " + describe(node));
  return true;
}

template <typename Kind>
bool Parser::readKind(yaml::Node *node, SMLoc keyLoc, StringRef path,
                      ArrayRef<std::pair<StringRef, Kind>> kinds, Kind &out) {
  std::string name;
  if (!readString(node, keyLoc, path, name))
    return false;
  for (const auto &[spelling, kind] : kinds)
    if (name == spelling) {
      out = kind;
      return true;
    }
  std::string expected;
  raw_string_ostream os(expected);
  llvm::interleave(
      kinds, os, [&](const auto &k) { os << k.first; }, ", ");
  return fail(locOf(node, keyLoc), path,
              "unknown kind '" + name + "' (expected one of " + expected + ")");
}

bool Parser::readGpu(yaml::Node *node, SMLoc keyLoc, StringRef path) {
  Topology::Gpu &gpu = topo.gpu;
  auto number = [&](double &out) {
    return [this, &out](yaml::Node *n, SMLoc l, StringRef p) {
      return readNumber(n, l, p, out);
    };
  };
  Topology::PeakTflops &peak = gpu.peakTflops;
  Field peakFields[] = {{"fp32", true, number(peak.fp32)},
                        {"tf32", true, number(peak.tf32)},
                        {"bf16", true, number(peak.bf16)},
                        {"fp16", true, number(peak.fp16)},
                        {"fp8", true, number(peak.fp8)}};
  Field fields[] = {
      {"type", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readString(n, l, p, gpu.type);
       }},
      {"memory_gib", true, number(gpu.memoryGib)},
      {"hbm_tb_per_s", true, number(gpu.hbmTbPerS)},
      {"peak_tflops", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         Seen seen;
         return readMapping(n, l, p, peakFields, seen);
       }},
      {"sm_arch", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         if (!readString(n, l, p, gpu.smArch))
           return false;
         StringRef arch = gpu.smArch;
         if (!arch.consume_front("sm_"))
           return fail(locOf(n, l), p,
                       "must be sm_ and a compute capability (e.g. sm_90a), "
                       "got '" +
                           gpu.smArch + "'");
         arch.consume_back("a") || arch.consume_back("f");
         if (arch.empty() || !llvm::all_of(arch, llvm::isDigit))
           return fail(locOf(n, l), p,
                       "must be sm_ and a compute capability (e.g. sm_90a), "
                       "got '" +
                           gpu.smArch + "'");
         return true;
       }},
  };
  Seen seen;
  return readMapping(node, keyLoc, path, fields, seen);
}

bool Parser::readIntraNode(yaml::Node *node, SMLoc keyLoc, StringRef path) {
  using K = Topology::IntraNodeKind;
  static const std::pair<StringRef, K> kinds[] = {{"nvlink", K::NVLink},
                                                  {"nvswitch", K::NVSwitch},
                                                  {"pcie", K::PCIe},
                                                  {"none", K::None}};
  Topology::IntraNode &intra = topo.intraNode;
  Field fields[] = {
      {"kind", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readKind<K>(n, l, p, kinds, intra.kind);
       }},
      {"gb_per_s_per_direction", false,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readNumber(n, l, p, intra.gbPerSPerDirection);
       }},
      {"latency_us", false,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readNumber(n, l, p, intra.latencyUs);
       }},
  };
  if (!readMapping(node, keyLoc, path, fields, intraSeen))
    return false;
  // The link fields are required for a link, and refused without one.
  for (StringRef name : {"gb_per_s_per_direction", "latency_us"}) {
    std::string fieldPath = (path + "." + name).str();
    if (intra.kind == K::None && intraSeen.contains(name))
      return fail(intraSeen.lookup(name), fieldPath,
                  "not allowed with kind 'none'");
    if (intra.kind != K::None && !intraSeen.contains(name))
      return fail(keyLoc, fieldPath,
                  "required field is missing (kind '" + toString(intra.kind) +
                      "')");
  }
  return true;
}

bool Parser::readInterNode(yaml::Node *node, SMLoc keyLoc, StringRef path) {
  using K = Topology::InterNodeKind;
  static const std::pair<StringRef, K> kinds[] = {{"infiniband", K::InfiniBand},
                                                  {"ethernet", K::Ethernet},
                                                  {"none", K::None}};
  Topology::InterNode &inter = topo.interNode;
  Field fields[] = {
      {"kind", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readKind<K>(n, l, p, kinds, inter.kind);
       }},
      {"nics_per_node", false,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readInteger(n, l, p, inter.nicsPerNode);
       }},
      {"nics_per_gpu", false,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readInteger(n, l, p, nicsPerGpu);
       }},
      {"gbit_per_s_per_nic", false,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readNumber(n, l, p, inter.gbitPerSPerNic);
       }},
      {"latency_us", false,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readNumber(n, l, p, inter.latencyUs);
       }},
  };
  if (!readMapping(node, keyLoc, path, fields, interSeen))
    return false;
  for (StringRef name :
       {"nics_per_node", "nics_per_gpu", "gbit_per_s_per_nic", "latency_us"}) {
    if (inter.kind == K::None && interSeen.contains(name))
      return fail(interSeen.lookup(name), (path + "." + name).str(),
                  "not allowed with kind 'none'");
  }
  if (inter.kind == K::None)
    return true;
  std::string kindNote = ("(kind '" + toString(inter.kind) + "')").str();
  bool perNode = interSeen.contains("nics_per_node");
  bool perGpu = interSeen.contains("nics_per_gpu");
  if (perNode && perGpu)
    return fail(interSeen.lookup("nics_per_gpu"),
                (path + ".nics_per_gpu").str(),
                "give nics_per_node or nics_per_gpu, not both");
  if (!perNode && !perGpu)
    return fail(keyLoc, (path + ".nics_per_node").str(),
                "required field is missing " + kindNote +
                    "; give nics_per_node or nics_per_gpu");
  for (StringRef name : {"gbit_per_s_per_nic", "latency_us"})
    if (!interSeen.contains(name))
      return fail(keyLoc, (path + "." + name).str(),
                  "required field is missing " + kindNote);
  return true;
}

/// The checks across fields, once every field is read.
bool Parser::checkTopology() {
  Topology &t = topo;
  if (t.nodes > std::numeric_limits<int32_t>::max() / t.gpusPerNode)
    return fail(rootSeen.lookup("nodes"), "nodes",
                "world size gpus_per_node * nodes is too large (at most " +
                    Twine(std::numeric_limits<int32_t>::max()) + " GPUs)");
  if (t.intraNode.kind == Topology::IntraNodeKind::None && t.gpusPerNode != 1)
    return fail(intraSeen.lookup("kind"), "intra_node.kind",
                "'none' needs gpus_per_node: 1, got " + Twine(t.gpusPerNode));
  if (t.interNode.kind == Topology::InterNodeKind::None && t.nodes != 1)
    return fail(interSeen.lookup("kind"), "inter_node.kind",
                "'none' needs nodes: 1, got " + Twine(t.nodes));
  if (nicsPerGpu) {
    if (nicsPerGpu > std::numeric_limits<int32_t>::max() / t.gpusPerNode)
      return fail(interSeen.lookup("nics_per_gpu"), "inter_node.nics_per_gpu",
                  "too large");
    t.interNode.nicsPerNode = nicsPerGpu * t.gpusPerNode;
  }
  return true;
}

Expected<Topology> Parser::run() {
  auto failure = [&]() {
    return createStringError(inconvertibleErrorCode(), *error);
  };
  // Syntax first, over the whole stream, so that the walk below only meets
  // well-formed YAML. The scanner reports its first error to the handler.
  {
    SourceMgr sm;
    std::optional<std::pair<unsigned, std::string>> syntax;
    sm.setDiagHandler(
        [](const SMDiagnostic &diag, void *ctx) {
          auto *out =
              static_cast<std::optional<std::pair<unsigned, std::string>> *>(
                  ctx);
          if (!*out)
            *out = {static_cast<unsigned>(std::max(diag.getLineNo(), 1)),
                    diag.getMessage().str()};
        },
        &syntax);
    yaml::Stream stream(text, sm, /*ShowColors=*/false);
    if (!stream.validate() || syntax) {
      unsigned line = syntax ? syntax->first : 1;
      std::string message = syntax ? syntax->second : "malformed";
      error =
          (fileName + ":" + Twine(line) + ": invalid YAML: " + message).str();
      return failure();
    }
  }

  SourceMgr sm;
  yaml::Stream stream(text, sm, /*ShowColors=*/false);
  SMLoc start = SMLoc::getFromPointer(text.begin());
  yaml::document_iterator doc = stream.begin();
  yaml::Node *root = doc != stream.end() ? doc->getRoot() : nullptr;
  if (!root || isa<yaml::NullNode>(root)) {
    fail(start, "",
         "empty file: expected a mapping with version, name, gpu, "
         "gpus_per_node, intra_node, inter_node and nodes");
    return failure();
  }
  Field fields[] = {
      {"version", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         if (!readInteger(n, l, p, topo.version))
           return false;
         if (topo.version != kFormatVersion)
           return fail(locOf(n, l), p,
                       "unsupported version " + Twine(topo.version) +
                           " (this weft reads version " +
                           Twine(kFormatVersion) + ")");
         return true;
       }},
      {"name", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         if (!readString(n, l, p, topo.name))
           return false;
         if (!llvm::all_of(topo.name, [](char c) {
               return llvm::isAlnum(c) || c == '-' || c == '_' || c == '.';
             }))
           return fail(locOf(n, l), p,
                       "must be letters, digits, '-', '_' or '.', got '" +
                           topo.name + "'");
         return true;
       }},
      {"gpu", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) { return readGpu(n, l, p); }},
      {"gpus_per_node", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readInteger(n, l, p, topo.gpusPerNode);
       }},
      {"intra_node", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readIntraNode(n, l, p);
       }},
      {"inter_node", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readInterNode(n, l, p);
       }},
      {"nodes", true,
       [&](yaml::Node *n, SMLoc l, StringRef p) {
         return readInteger(n, l, p, topo.nodes);
       }},
  };
  if (!readMapping(root, start, "", fields, rootSeen) || !checkTopology())
    return failure();
  if (++doc != stream.end()) {
    yaml::Node *next = doc->getRoot();
    fail(next ? next->getSourceRange().Start : start, "",
         "more than one YAML document; a topology file holds one");
    return failure();
  }
  return std::move(topo);
}
} // namespace

Expected<Topology> mlir::weft::parseTopology(StringRef text,
                                             StringRef fileName) {
  return Parser(text, fileName).run();
}

Expected<Topology> mlir::weft::loadTopology(StringRef nameOrPath) {
  for (const TopologyPreset &preset : topologyPresets())
    if (preset.name == nameOrPath)
      return parseTopology(preset.text, preset.path);
  bool looksLikePath = nameOrPath.contains('/') ||
                       nameOrPath.ends_with(".yaml") ||
                       nameOrPath.ends_with(".yml");
  if (!looksLikePath && !sys::fs::exists(nameOrPath))
    return make_error<UnknownTopologyError>(nameOrPath.str());
  // A regular file only: a FIFO or device would block or never end.
  auto text = ::weft::runtime::readRegularFile(nameOrPath.str());
  if (!text.ok())
    return createStringError(inconvertibleErrorCode(), text.message());
  return parseTopology(*text, nameOrPath);
}
