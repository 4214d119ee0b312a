// Writes the artifact directory: manifest.pb, rank<N>.plan.pb and, for
// packed weights, rank<N>.weights.safetensors.
#include "compiler/artifact/ArtifactWriter.h"

#include "compiler/artifact/PlanBuilder.h"
#include "compiler/artifact/WeightLocator.h"
#include "compiler/codegen/CudaCodegen.h"
#include "compiler/onnx/OnnxModel.h"
#include "runtime/artifact/ArtifactReader.h"
#include "runtime/artifact/Sha256.h"
#include "runtime/support/SafeFile.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::weft;
namespace art = ::weft::artifact;

namespace {
/// A rank's file name in the artifact: rank<N>.<suffix>.
std::string rankFile(int64_t rank, llvm::StringRef suffix) {
  return llvm::formatv("rank{0}.{1}", rank, suffix).str();
}

/// Hex SHA-256 of bytes: the runtime's, so both sides hash alike.
std::string sha256Hex(StringRef bytes) {
  return ::weft::runtime::sha256Hex(bytes.data(), bytes.size());
}

const char *safetensorsDType(art::DType d) {
  switch (d) {
  case art::F32:
    return "F32";
  case art::F16:
    return "F16";
  case art::BF16:
    return "BF16";
  case art::F64:
    return "F64";
  case art::I64:
    return "I64";
  case art::I32:
    return "I32";
  case art::I16:
    return "I16";
  case art::I8:
    return "I8";
  case art::U8:
    return "U8";
  case art::U16:
    return "U16";
  case art::U32:
    return "U32";
  case art::U64:
    return "U64";
  case art::BOOL:
    return "BOOL";
  default:
    return "F32";
  }
}

/// Tensors packed into one safetensors file.
class SafetensorsFile {
public:
  /// Adds a tensor; returns its byte range within the data section.
  std::pair<uint64_t, uint64_t> add(const art::WeightRef &ref,
                                    std::string bytes) {
    uint64_t begin = data.size();
    data += bytes;
    entries.push_back(
        {ref.name(), ref.dtype(),
         std::vector<int64_t>(ref.shape().begin(), ref.shape().end()), begin,
         data.size()});
    return {begin, data.size()};
  }
  bool empty() const { return entries.empty(); }
  /// The header's size, fixed once all tensors are added.
  std::string header() const {
    std::string json = "{";
    for (auto [i, e] : llvm::enumerate(entries)) {
      if (i)
        json += ',';
      json += '"';
      json += e.name;
      json += "\":{\"dtype\":\"";
      json += safetensorsDType(e.dtype);
      json += "\",\"shape\":[";
      for (auto [j, d] : llvm::enumerate(e.shape)) {
        if (j)
          json += ',';
        json += std::to_string(d);
      }
      json += "],\"data_offsets\":[" + std::to_string(e.begin) + "," +
              std::to_string(e.end) + "]}";
    }
    json += "}";
    while (json.size() % 8)
      json += ' ';
    return json;
  }
  std::string serialize() const {
    std::string h = header();
    std::string out(8, '\0');
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i)
      out[i] = char((n >> (8 * i)) & 0xff);
    return out + h + data;
  }

private:
  struct Entry {
    std::string name;
    art::DType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  std::string data;
};

/// Bytes of a tensor (inline or typed fields), little-endian, 1 byte per bool.
FailureOr<std::string> tensorBytes(const onnx::TensorProto &t, Location loc,
                                   StringRef dir) {
  Type elem = onnxElementType(*loc.getContext(), t.data_type());
  SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
  auto data = readTensorData(t, RankedTensorType::get(shape, elem), dir);
  if (!data)
    return emitError(loc) << llvm::toString(data.takeError());
  if (elem.isInteger(1)) {
    std::string out;
    for (bool b : data->getValues<bool>())
      out.push_back(char(b));
    return out;
  }
  ArrayRef<char> raw = data->getRawData();
  if (!data->isSplat())
    return std::string(raw.begin(), raw.end());
  std::string out;
  for (int64_t i = 0, n = data->getNumElements(); i < n; ++i)
    out.append(raw.data(), raw.size());
  return out;
}

/// The row-major box [begin, begin + size) of a tensor's bytes.
std::string sliceBytes(StringRef full, ArrayRef<int64_t> shape,
                       int64_t elemBytes, ArrayRef<int64_t> begin,
                       ArrayRef<int64_t> size) {
  int64_t rank = shape.size();
  SmallVector<int64_t> strides(rank, elemBytes);
  for (int64_t d = rank - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < rank; ++d)
    rows *= size[d];
  std::string out;
  SmallVector<int64_t> idx(rank, 0);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = begin[rank - 1] * elemBytes;
    for (int64_t d = 0; d + 1 < rank; ++d)
      off += (begin[d] + idx[d]) * strides[d];
    out.append(full.data() + off, size[rank - 1] * elemBytes);
    for (int64_t d = rank - 2; d >= 0; --d) {
      if (++idx[d] < size[d])
        break;
      idx[d] = 0;
    }
  }
  return out;
}

LogicalResult writeFile(Location loc, StringRef path, StringRef bytes) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (!ec) {
    os << bytes;
    os.close();
    ec = os.error();
  }
  if (ec)
    return emitError(loc) << "cannot write '" << path << "': " << ec.message();
  return success();
}

class Writer {
public:
  Writer(ModuleOp module, const ArtifactOptions &options)
      : module(module), options(options),
        loc(FileLineColLoc::get(module.getContext(), options.output, 0, 0)) {}
  LogicalResult run();

private:
  LogicalResult runGeneration();
  std::optional<WeightInfo> weightInfo(StringRef name);
  art::Manifest baseManifest(int64_t world, const art::Plan &first);
  RankLayout rankLayout(int64_t rank) const;
  ModuleOp module;
  const ArtifactOptions &options;
  Location loc;
  OnnxModel model;
  std::string modelBytes;
  llvm::StringMap<const onnx::TensorProto *> initializers;
  llvm::StringMap<ByteRange> rawRanges;
  llvm::StringMap<std::string> fullHashes; // by weight name

  LogicalResult loadModel();
  LogicalResult locateWeights(art::Plan &plan, SafetensorsFile &packed,
                              StringRef packedName);
  LogicalResult generateGpuKernels(art::Manifest &manifest,
                                   std::vector<art::Plan> &plans);
  LogicalResult writeDirectory(art::Manifest manifest,
                               const std::vector<art::Plan> &plans,
                               const std::vector<SafetensorsFile> &packed);

  /// Files besides manifest, plans and weights: name and bytes.
  std::vector<std::pair<std::string, std::string>> extraFiles;
};

LogicalResult Writer::loadModel() {
  auto m = loadOnnxModel(options.modelPath);
  if (!m)
    return emitError(loc) << llvm::toString(m.takeError());
  model = std::move(*m);
  auto bytes =
      ::weft::runtime::readRegularFile(options.modelPath, kMaxModelBytes);
  if (!bytes.ok())
    return emitError(loc) << bytes.message();
  modelBytes = std::move(*bytes);
  for (const auto &init : model.proto.graph().initializer())
    initializers[init.name()] = &init;
  auto ranges = locateRawData(modelBytes);
  if (!ranges)
    return emitError(loc) << llvm::toString(ranges.takeError());
  rawRanges = std::move(*ranges);
  return success();
}

LogicalResult Writer::locateWeights(art::Plan &plan, SafetensorsFile &packed,
                                    StringRef packedName) {
  std::string modelFile = llvm::sys::path::filename(options.modelPath).str();
  for (art::WeightRef &ref : *plan.mutable_weights()) {
    const onnx::TensorProto &t = *initializers.lookup(ref.name());
    int64_t bytes = dtypeBytes(ref.dtype());
    for (int64_t d : ref.shape())
      bytes *= d;
    auto ext = externalRefOf(t);
    if (!ext)
      return emitError(loc) << llvm::toString(ext.takeError());
    if (!options.packWeights && *ext) {
      // By reference into the external data file; hashed when present.
      ref.set_file((*ext)->location);
      ref.set_relative_to_model(true);
      ref.set_offset((*ext)->offset);
      ref.set_length((*ext)->length >= 0 ? (*ext)->length : bytes);
      auto cached = fullHashes.find(ref.name());
      if (cached != fullHashes.end()) {
        ref.set_sha256(cached->second);
        continue;
      }
      // The importer checked the reference (checkExternalData); an absent
      // file gets no hash, anything else is hashed through the file rules.
      llvm::SmallString<256> file(model.dir);
      llvm::sys::path::append(file, (*ext)->location);
      if (llvm::sys::fs::exists(file)) {
        auto opened = openExternalData(t, **ext, model.dir);
        if (!opened)
          return emitError(loc) << llvm::toString(opened.takeError());
        auto bytes = opened->read(ref.offset(), ref.length());
        if (!bytes.ok())
          return emitError(loc)
                 << "initializer '" << ref.name() << "': " << bytes.message();
        ref.set_sha256(sha256Hex(*bytes));
      }
      fullHashes[ref.name()] = ref.sha256();
      continue;
    }
    auto raw = rawRanges.find(ref.name());
    if (!options.packWeights && !*ext && raw != rawRanges.end() &&
        int64_t(raw->second.length) == bytes) {
      // By reference into the model file itself.
      ref.set_file(modelFile);
      ref.set_relative_to_model(true);
      ref.set_offset(raw->second.offset);
      ref.set_length(raw->second.length);
      ref.set_sha256(
          sha256Hex(StringRef(modelBytes)
                        .substr(raw->second.offset, raw->second.length)));
      continue;
    }
    // Packed: typed-field initializers always, all weights with --pack-weights.
    // A rank packs only its slice, which then is the whole tensor it holds.
    auto data = tensorBytes(t, loc, model.dir);
    if (failed(data))
      return failure();
    if (ref.slice_size_size()) {
      SmallVector<int64_t> shape(ref.shape().begin(), ref.shape().end());
      SmallVector<int64_t> begin(ref.slice_begin().begin(),
                                 ref.slice_begin().end());
      SmallVector<int64_t> size(ref.slice_size().begin(),
                                ref.slice_size().end());
      *data = sliceBytes(*data, shape, dtypeBytes(ref.dtype()), begin, size);
      ref.clear_shape();
      for (int64_t d : size)
        ref.add_shape(d);
      ref.clear_slice_begin();
      ref.clear_slice_size();
    }
    ref.set_sha256(sha256Hex(*data));
    auto [begin, end] = packed.add(ref, std::move(*data));
    ref.set_file(packedName.str());
    ref.set_relative_to_model(false);
    ref.set_offset(begin); // within the data section; fixed up below
    ref.set_length(end - begin);
  }
  // Offsets of packed tensors become absolute file offsets.
  uint64_t dataStart = 8 + packed.header().size();
  for (art::WeightRef &ref : *plan.mutable_weights())
    if (!ref.relative_to_model())
      ref.set_offset(ref.offset() + dataStart);
  return success();
}

LogicalResult
Writer::writeDirectory(art::Manifest m, const std::vector<art::Plan> &plans,
                       const std::vector<SafetensorsFile> &packed) {
  std::string out = options.output;
  std::string tmp =
      out + ".tmp-" + std::to_string(llvm::sys::Process::getProcessId());
  // The output is a new path or an earlier artifact, in an existing
  // directory: parents are never created (SafeFile.h).
  if (auto s = ::weft::runtime::checkWritableDirectory(out); !s.ok())
    return emitError(loc) << s.message();
  llvm::sys::fs::remove_directories(tmp);
  if (auto ec = llvm::sys::fs::create_directory(tmp))
    return emitError(loc) << "cannot create '" << tmp << "': " << ec.message();
  auto cleanup = [&] { llvm::sys::fs::remove_directories(tmp); };
  for (auto [r, plan] : llvm::enumerate(plans)) {
    art::RankEntry *entry = m.mutable_ranks(r);
    std::string planBytes;
    plan.SerializeToString(&planBytes);
    entry->set_plan_sha256(sha256Hex(planBytes));
    if (failed(writeFile(loc, tmp + "/" + entry->plan_file(), planBytes))) {
      cleanup();
      return failure();
    }
    if (packed[r].empty())
      continue;
    std::string w = packed[r].serialize();
    entry->set_weights_file(rankFile(r, "weights.safetensors"));
    entry->set_weights_sha256(sha256Hex(w));
    if (failed(writeFile(loc, tmp + "/" + entry->weights_file(), w))) {
      cleanup();
      return failure();
    }
  }
  for (const auto &[name, bytes] : extraFiles) {
    if (failed(writeFile(loc, tmp + "/" + name, bytes))) {
      cleanup();
      return failure();
    }
  }
  std::string manifestBytes;
  m.SerializeToString(&manifestBytes);
  if (failed(writeFile(loc, tmp + "/manifest.pb", manifestBytes))) {
    cleanup();
    return failure();
  }
  // Replace an earlier artifact, never anything else.
  std::string old;
  if (llvm::sys::fs::exists(out)) {
    if (!llvm::sys::fs::exists(out + "/manifest.pb")) {
      cleanup();
      return emitError(loc) << "'" << out
                            << "' exists and is not a weft artifact; "
                               "refusing to replace it";
    }
    old = out + ".old-" + std::to_string(llvm::sys::Process::getProcessId());
    if (auto ec = llvm::sys::fs::rename(out, old)) {
      cleanup();
      return emitError(loc)
             << "cannot replace '" << out << "': " << ec.message();
    }
  }
  if (auto ec = llvm::sys::fs::rename(tmp, out)) {
    cleanup();
    if (!old.empty())
      (void)llvm::sys::fs::rename(old, out);
    return emitError(loc) << "cannot create '" << out << "': " << ec.message();
  }
  if (!old.empty())
    llvm::sys::fs::remove_directories(old);
  return success();
}

void addSpec(google::protobuf::RepeatedPtrField<art::TensorSpec> *specs,
             const art::Buffer &b, int64_t chunks) {
  art::TensorSpec *s = specs->Add();
  s->set_name(b.name());
  s->set_dtype(b.dtype());
  for (auto [i, d] : llvm::enumerate(b.shape()))
    s->add_shape(i == 0 ? d * chunks : d);
}

LogicalResult Writer::run() {
  auto func = module.lookupSymbol<func::FuncOp>("main");
  if (!func)
    return emitError(loc) << "the module has no @main function";
  if (!options.entries.empty())
    return runGeneration();
  if (failed(loadModel()))
    return failure();
  auto weightInfo = [&](StringRef name) { return this->weightInfo(name); };
  int64_t world = options.tp * options.pp * options.dp;
  auto stages = assignStages(func, options.pp);
  std::vector<art::Plan> plans;
  std::vector<SafetensorsFile> packed(world);
  for (int64_t r = 0; r < world; ++r) {
    RankLayout layout = rankLayout(r);
    auto plan = buildPlan(func, weightInfo, layout, &stages);
    if (failed(plan))
      return failure();
    std::string packedName = rankFile(r, "weights.safetensors");
    if (failed(locateWeights(*plan, packed[r], packedName)))
      return failure();
    plans.push_back(std::move(*plan));
  }
  const art::Plan &first = plans.front();
  // The last stage's first rank has the outputs.
  const art::Plan &last = plans[(options.pp - 1) * options.tp];
  int64_t chunks = options.dp * options.microbatches;
  art::Manifest manifest = baseManifest(world, first);
  // Whole shapes: a plan holds one of `chunks` slices of the batch.
  for (uint32_t id : first.inputs())
    addSpec(manifest.mutable_inputs(), first.buffers(id), chunks);
  for (uint32_t id : last.outputs())
    addSpec(manifest.mutable_outputs(), last.buffers(id), chunks);
  if (options.target != "cpu" && failed(generateGpuKernels(manifest, plans)))
    return failure();
  return writeDirectory(manifest, plans, packed);
}

std::optional<WeightInfo> Writer::weightInfo(StringRef name) {
  const onnx::TensorProto *t = initializers.lookup(name);
  if (!t)
    return std::nullopt;
  Type elem = onnxElementType(*module.getContext(), t->data_type());
  return WeightInfo{toArtifactDType(elem),
                    std::vector<int64_t>(t->dims().begin(), t->dims().end())};
}

/// Where rank `r` sits in the layout: rank = (replica * pp + stage) * tp +
/// tpIndex.
RankLayout Writer::rankLayout(int64_t r) const {
  RankLayout layout;
  layout.tp = options.tp;
  layout.pp = options.pp;
  layout.dp = options.dp;
  layout.tpIndex = r % options.tp;
  layout.stage = (r / options.tp) % options.pp;
  layout.replica = r / (options.tp * options.pp);
  return layout;
}

/// The manifest's fields common to every artifact, its ranks' plan files
/// among them; no inputs or outputs yet.
art::Manifest Writer::baseManifest(int64_t world, const art::Plan &first) {
  art::Manifest manifest;
  manifest.set_format_version(::weft::runtime::kArtifactFormatVersion);
  manifest.set_compiler_version(WEFT_VERSION);
  llvm::SmallString<256> abs(options.modelPath);
  llvm::sys::fs::make_absolute(abs);
  manifest.set_source_model(std::string(abs));
  manifest.set_source_sha256(sha256Hex(modelBytes));
  manifest.set_topology(options.topology);
  manifest.set_world_size(world);
  manifest.set_tp(options.tp);
  manifest.set_pp(options.pp);
  manifest.set_dp(options.dp);
  manifest.set_microbatches(options.microbatches);
  manifest.set_target(options.target);
  art::DType compute = art::F32;
  for (const art::Buffer &b : first.buffers())
    if (b.dtype() == art::F16 || b.dtype() == art::BF16)
      compute = b.dtype();
  manifest.set_compute_dtype(compute);
  for (int64_t r = 0; r < world; ++r) {
    art::RankEntry *rank = manifest.add_ranks();
    rank->set_rank(r);
    rank->set_plan_file(rankFile(r, "plan.pb"));
  }
  for (const auto &d : options.dims)
    (*manifest.mutable_dims())[d.getKey().str()] = d.getValue();
  for (const auto &[name, bytes] : options.tokenizerFiles) {
    art::TokenizerFile *f = manifest.add_tokenizer_files();
    f->set_name(name);
    f->set_file(name);
    f->set_sha256(sha256Hex(bytes));
    extraFiles.emplace_back(name, bytes);
  }
  return manifest;
}

/// Appends `entry` (one rank's plan of one entry point) to `merged` as the
/// entry point `name`. Weights, constants and state are shared: weights by
/// their reference, constants by content, state by name. The entry's arena
/// regions keep their offsets (entries never run at the same time), so
/// the arena is the largest of theirs.
LogicalResult mergeEntry(art::Plan &merged, const art::Plan &entry,
                         StringRef name, Location loc,
                         llvm::StringMap<uint32_t> &weightKeys,
                         llvm::StringMap<uint32_t> &sharedBuffers) {
  std::vector<uint32_t> id(entry.buffers_size());
  for (const art::Buffer &b : entry.buffers()) {
    art::Buffer nb = b;
    nb.clear_id();
    if (b.kind() == art::Buffer::WEIGHT) {
      const art::WeightRef &w = entry.weights(b.weight());
      auto [it, fresh] =
          weightKeys.try_emplace(w.SerializeAsString(), merged.weights_size());
      if (fresh)
        *merged.add_weights() = w;
      nb.set_weight(it->second);
    }
    bool shared = b.kind() == art::Buffer::WEIGHT ||
                  b.kind() == art::Buffer::CONSTANT ||
                  b.kind() == art::Buffer::STATE;
    std::string key = b.kind() == art::Buffer::STATE ? "state:" + b.name()
                                                     : nb.SerializeAsString();
    if (shared) {
      auto it = sharedBuffers.find(key);
      if (it != sharedBuffers.end()) {
        const art::Buffer &have = merged.buffers(it->second);
        if (b.kind() == art::Buffer::STATE &&
            (have.dtype() != b.dtype() ||
             !llvm::equal(have.shape(), b.shape())))
          return emitError(loc) << "entry point '" << name << "': state '"
                                << b.name() << "' differs from another "
                                << "entry's";
        id[b.id()] = it->second;
        continue;
      }
    }
    nb.set_id(merged.buffers_size());
    id[b.id()] = nb.id();
    if (shared)
      sharedBuffers[key] = nb.id();
    *merged.add_buffers() = std::move(nb);
  }
  art::EntryPoint *e = merged.add_entry_points();
  e->set_name(name.str());
  for (const art::Step &step : entry.steps()) {
    art::Step *s = e->add_steps();
    *s = step;
    for (uint32_t &i : *s->mutable_inputs())
      i = id[i];
    for (uint32_t &o : *s->mutable_outputs())
      o = id[o];
  }
  for (uint32_t i : entry.inputs())
    e->add_inputs(id[i]);
  for (uint32_t o : entry.outputs())
    e->add_outputs(id[o]);
  merged.set_arena_bytes(std::max(merged.arena_bytes(), entry.arena_bytes()));
  return success();
}

LogicalResult Writer::runGeneration() {
  if (failed(loadModel()))
    return failure();
  auto weightInfo = [&](StringRef name) { return this->weightInfo(name); };
  SmallVector<func::FuncOp> funcs;
  for (auto [name, entryModule] : options.entries) {
    auto f = entryModule.lookupSymbol<func::FuncOp>("main");
    if (!f)
      return emitError(loc) << "entry point '" << name << "' has no @main";
    funcs.push_back(f);
  }
  // Every entry puts each layer, and so its cache, on the same stage: the
  // stages the cost model gives the first entry (the smallest prefill).
  SmallVector<int64_t> layerCuts;
  if (options.pp > 1)
    layerCuts =
        stageLayerCuts(funcs.front(), assignStages(funcs.front(), options.pp));
  std::vector<llvm::DenseMap<Operation *, int64_t>> stages;
  for (func::FuncOp f : funcs)
    stages.push_back(assignStages(f, options.pp, layerCuts));
  int64_t world = options.tp * options.pp * options.dp;
  std::vector<art::Plan> plans;
  std::vector<SafetensorsFile> packed(world);
  art::Generation generation = options.generation;
  for (int64_t r = 0; r < world; ++r) {
    RankLayout layout = rankLayout(r);
    art::Plan merged;
    merged.set_format_version(::weft::runtime::kArtifactFormatVersion);
    merged.set_rank(r);
    llvm::StringMap<uint32_t> weightKeys, sharedBuffers;
    for (auto [i, f] : llvm::enumerate(funcs)) {
      auto plan = buildPlan(f, weightInfo, layout, &stages[i]);
      if (failed(plan) ||
          failed(mergeEntry(merged, *plan, options.entries[i].first, loc,
                            weightKeys, sharedBuffers)))
        return failure();
    }
    uint64_t blockBytes = 0;
    for (const art::Buffer &b : merged.buffers())
      if (b.kind() == art::Buffer::STATE && b.shape_size() && b.shape(0) == 0)
        blockBytes += b.bytes();
    generation.add_kv_block_bytes(blockBytes);
    std::string packedName = rankFile(r, "weights.safetensors");
    if (failed(locateWeights(merged, packed[r], packedName)))
      return failure();
    plans.push_back(std::move(merged));
  }
  art::Manifest manifest = baseManifest(world, plans.front());
  *manifest.mutable_generation() = generation;
  if (options.target != "cpu" && failed(generateGpuKernels(manifest, plans)))
    return failure();
  return writeDirectory(manifest, plans, packed);
}

LogicalResult Writer::generateGpuKernels(art::Manifest &manifest,
                                         std::vector<art::Plan> &plans) {
  auto arch = parseGpuArch(options.target);
  if (!arch)
    return emitError(loc) << llvm::toString(arch.takeError());
  auto kernels = generateKernels(plans, *arch);
  if (!kernels)
    return emitError(loc) << "generating kernels for " << arch->name << ": "
                          << llvm::toString(kernels.takeError());
  art::KernelModule *module = manifest.mutable_kernels();
  module->set_arch(arch->name);
  module->set_source_file("kernels.cu");
  module->set_source_sha256(sha256Hex(kernels->source));
  module->set_cubin_file(llvm::formatv("kernels.{0}.cubin", arch->name).str());
  module->set_cubin_sha256(sha256Hex(kernels->cubin));
  module->set_ptx_file(
      llvm::formatv("kernels.{0}.ptx", arch->virtualName).str());
  module->set_ptx_sha256(sha256Hex(kernels->ptx));
  extraFiles.emplace_back(module->source_file(), std::move(kernels->source));
  extraFiles.emplace_back(module->cubin_file(), std::move(kernels->cubin));
  extraFiles.emplace_back(module->ptx_file(), std::move(kernels->ptx));
  if (options.stats) {
    options.stats->kernels = kernels->numKernels;
    options.stats->elementwiseSteps = kernels->numSteps;
    options.stats->nvrtcSeconds = kernels->nvrtcSeconds;
  }
  return success();
}
} // namespace

LogicalResult mlir::weft::writeArtifact(ModuleOp module,
                                        const ArtifactOptions &options) {
  return Writer(module, options).run();
}
