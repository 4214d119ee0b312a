// Reads and checks a weft artifact: manifest, per-rank plans and weights.
#include "runtime/artifact/ArtifactReader.h"

#include "runtime/artifact/PlanValidator.h"
#include "runtime/artifact/Safetensors.h"
#include "runtime/artifact/Sha256.h"
#include "runtime/artifact/StepAttrs.h"
#include "runtime/support/AlignedBuffer.h"
#include "runtime/support/MappedFile.h"
#include "runtime/support/SafeFile.h"

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

namespace weft::runtime {

using artifact::Buffer;
using artifact::Manifest;
using artifact::Plan;
using artifact::RankEntry;
using artifact::Step;
using artifact::TensorSpec;
using artifact::WeightRef;

namespace {

std::string quoted(const std::string &s) { return "'" + s + "'"; }

std::string joinPath(const std::string &dir, const std::string &file) {
  if (dir.empty())
    return file;
  return dir.back() == '/' ? dir + file : dir + "/" + file;
}

std::string parentDir(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// A path that must stay inside its base directory: relative, no "..".
Status checkRelativePath(const std::string &path, const std::string &field) {
  if (path.empty())
    return errorStatus(field + " is empty");
  if (path[0] == '/')
    return errorStatus(field + " " + quoted(path) +
                       " is absolute (must be relative)");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos)
      end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2)
      return errorStatus(field + " " + quoted(path) + " contains '..'");
    start = end + 1;
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// Plan checks
//===----------------------------------------------------------------------===//

Status checkSlice(const WeightRef &ref) {
  if (ref.slice_begin_size() == 0 && ref.slice_size_size() == 0)
    return okStatus();
  if (ref.slice_begin_size() != ref.shape_size() ||
      ref.slice_size_size() != ref.shape_size())
    return errorStatus("slice_begin and slice_size need one entry per dim "
                       "of shape " +
                       shapeString(toShape(ref.shape())));
  for (int d = 0; d < ref.shape_size(); ++d) {
    int64_t b = ref.slice_begin(d), n = ref.slice_size(d), dim = ref.shape(d);
    if (b < 0 || n < 0 || b > dim || n > dim - b)
      return errorStatus(
          "slice [" + std::to_string(b) + ", " + std::to_string(b) + " + " +
          std::to_string(n) + ") of dim " + std::to_string(d) +
          " is outside the shape " + shapeString(toShape(ref.shape())));
  }
  return okStatus();
}

Status checkWeightRef(const WeightRef &ref) {
  auto bytes = checkedBytes(toShape(ref.shape()), ref.dtype());
  if (!bytes.ok())
    return bytes.status();
  if (ref.length() != *bytes)
    return errorStatus(
        "length " + std::to_string(ref.length()) + " does not match shape " +
        shapeString(toShape(ref.shape())) + " of " + dtypeName(ref.dtype()) +
        " (" + std::to_string(*bytes) + " bytes)");
  if (Status s = checkRelativePath(ref.file(), "file"); !s.ok())
    return s;
  return checkSlice(ref);
}

Status checkWeightRefs(const Plan &plan) {
  for (int i = 0; i < plan.weights_size(); ++i) {
    const WeightRef &ref = plan.weights(i);
    if (Status s = checkWeightRef(ref); !s.ok())
      return s.withPrefix("weights[" + std::to_string(i) + "] " +
                          quoted(ref.name()) + ": ");
  }
  return okStatus();
}

bool inArena(const Buffer &buf) {
  return buf.kind() == Buffer::ARENA || buf.kind() == Buffer::INPUT ||
         buf.kind() == Buffer::OUTPUT;
}

Status checkBufferPlace(const Buffer &buf, const Plan &plan) {
  if (inArena(buf)) {
    if (buf.offset() > plan.arena_bytes() ||
        buf.bytes() > plan.arena_bytes() - buf.offset())
      return errorStatus("offset " + std::to_string(buf.offset()) + " + " +
                         std::to_string(buf.bytes()) +
                         " bytes is past arena_bytes " +
                         std::to_string(plan.arena_bytes()));
    if ((buf.kind() == Buffer::INPUT || buf.kind() == Buffer::OUTPUT) &&
        buf.name().empty())
      return errorStatus("graph input/output buffer has no name");
    return okStatus();
  }
  if (buf.kind() == Buffer::WEIGHT) {
    if (buf.weight() >= static_cast<uint32_t>(plan.weights_size()))
      return errorStatus("weight " + std::to_string(buf.weight()) +
                         " is not in Plan.weights (" +
                         std::to_string(plan.weights_size()) + " entries)");
    const WeightRef &ref = plan.weights(buf.weight());
    // A float weight may be stored in another float type: converted on load.
    bool converts = ref.dtype() != buf.dtype() && isFloatDType(ref.dtype()) &&
                    isFloatDType(buf.dtype());
    auto held = heldWeightBytes(ref);
    uint64_t elems = held.ok() ? *held / dtypeSize(ref.dtype()) : 0;
    if ((ref.dtype() != buf.dtype() && !converts) || !held.ok() ||
        elems * dtypeSize(buf.dtype()) != buf.bytes())
      return errorStatus(dtypeName(buf.dtype()) + " " +
                         shapeString(toShape(buf.shape())) +
                         " does not match weight " + quoted(ref.name()) + " (" +
                         dtypeName(ref.dtype()) + ", " + std::to_string(elems) +
                         " elements held)");
    return okStatus();
  }
  if (buf.kind() == Buffer::STATE) {
    if (buf.name().empty())
      return errorStatus("state buffer has no name");
    return okStatus();
  }
  if (buf.kind() == Buffer::CONSTANT) {
    if (buf.data().size() != buf.bytes())
      return errorStatus("constant holds " + std::to_string(buf.data().size()) +
                         " bytes of data, expected " +
                         std::to_string(buf.bytes()));
    return okStatus();
  }
  return errorStatus("unknown kind " + std::to_string(buf.kind()));
}

Status checkBuffer(const Buffer &buf, const Plan &plan) {
  Shape shape = toShape(buf.shape());
  // A KV cache's bytes are those of one block: its blocks are chosen when a
  // session opens.
  bool pagedCache = isPagedCache(buf);
  if (pagedCache)
    shape.erase(shape.begin());
  auto bytes = checkedBytes(shape, buf.dtype());
  if (!bytes.ok())
    return bytes.status();
  if (buf.bytes() != *bytes)
    return errorStatus(
        "bytes " + std::to_string(buf.bytes()) + " does not match shape " +
        shapeString(toShape(buf.shape())) + " of " + dtypeName(buf.dtype()) +
        " (" + std::to_string(*bytes) + (pagedCache ? " per block)" : ")"));
  return checkBufferPlace(buf, plan);
}

using BufferIndex = std::unordered_map<uint32_t, const Buffer *>;

Result<BufferIndex> indexBuffers(const Plan &plan) {
  BufferIndex byId;
  for (int i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &buf = plan.buffers(i);
    std::string where = "buffers[" + std::to_string(i) + "] (id " +
                        std::to_string(buf.id()) + "): ";
    if (!byId.emplace(buf.id(), &buf).second)
      return errorStatus(where + "id is used twice");
    if (Status s = checkBuffer(buf, plan); !s.ok())
      return s.withPrefix(where);
  }
  return byId;
}

/// Plan.inputs / Plan.outputs: existing ids of the right kind, each buffer
/// of that kind listed exactly once.
Status checkGraphBuffers(const google::protobuf::RepeatedField<uint32_t> &ids,
                         const BufferIndex &byId, const Plan &plan,
                         Buffer::Kind kind, const std::string &field) {
  std::set<uint32_t> listed;
  for (int i = 0; i < ids.size(); ++i) {
    std::string where = field + "[" + std::to_string(i) + "]: ";
    auto it = byId.find(ids[i]);
    if (it == byId.end())
      return errorStatus(where + "buffer id " + std::to_string(ids[i]) +
                         " does not exist");
    if (it->second->kind() != kind)
      return errorStatus(where + "buffer " + std::to_string(ids[i]) +
                         " is not of kind " + Buffer::Kind_Name(kind));
    if (!listed.insert(ids[i]).second)
      return errorStatus(where + "buffer " + std::to_string(ids[i]) +
                         " is listed twice");
  }
  // With several entry points, a graph buffer may be another entry's.
  if (!plan.entry_points().empty())
    return okStatus();
  for (const Buffer &buf : plan.buffers())
    if (buf.kind() == kind && !listed.count(buf.id()))
      return errorStatus("buffer " + std::to_string(buf.id()) + " of kind " +
                         Buffer::Kind_Name(kind) + " is not in " + field);
  return okStatus();
}

/// PAGED_ATTENTION writes its inputs 3 and 4, the KV caches: they must be
/// STATE buffers, which persist from one run to the next.
Status checkPagedCaches(const Step &step, const BufferIndex &byId) {
  if (step.kind() != Step::PAGED_ATTENTION)
    return okStatus();
  if (step.inputs_size() < 5)
    return errorStatus("PAGED_ATTENTION has " +
                       std::to_string(step.inputs_size()) +
                       " inputs; its KV caches are inputs 3 and 4");
  for (int i : {3, 4}) {
    const Buffer &cache = *byId.at(step.inputs(i));
    if (cache.kind() != Buffer::STATE)
      return errorStatus("input " + std::to_string(i) + " (buffer " +
                         std::to_string(cache.id()) + " of kind " +
                         Buffer::Kind_Name(cache.kind()) +
                         ") is a KV cache the step writes: it must be a "
                         "STATE buffer");
  }
  return okStatus();
}

Status checkStepBuffers(const Step &step, const BufferIndex &byId) {
  for (uint32_t id : step.inputs())
    if (!byId.count(id))
      return errorStatus("input buffer id " + std::to_string(id) +
                         " does not exist");
  for (uint32_t id : step.outputs()) {
    auto it = byId.find(id);
    if (it == byId.end())
      return errorStatus("output buffer id " + std::to_string(id) +
                         " does not exist");
    Buffer::Kind kind = it->second->kind();
    if (kind == Buffer::WEIGHT || kind == Buffer::CONSTANT ||
        kind == Buffer::INPUT)
      return errorStatus("writes buffer " + std::to_string(id) + " of kind " +
                         Buffer::Kind_Name(kind) + ", which is read-only");
  }
  return checkPagedCaches(step, byId);
}

template <typename Field> std::string listString(const Field &list) {
  return shapeString(toShape(list));
}

/// Refuses a format version other than this runtime's; format 1 (untyped
/// step attributes) is named, as it is what an older compiler wrote.
Status checkFormatVersion(uint32_t version, const char *what) {
  if (version == kArtifactFormatVersion)
    return okStatus();
  std::string msg = std::string("unsupported ") + what + " format version " +
                    std::to_string(version) + " (this runtime reads " +
                    std::to_string(kArtifactFormatVersion) + ")";
  if (version == 1)
    msg += ": format 1 predates typed step attributes; recompile the "
           "model with this weft";
  return errorStatus(msg);
}

/// COLLECTIVE: a known op, and a group of distinct ranks of the world that
/// holds the plan's own rank.
Status checkCollectiveStep(const Step &step, uint32_t rank,
                           uint32_t worldSize) {
  const artifact::CollectiveAttrs &attrs = step.collective();
  if (attrs.op() != 0 && attrs.op() != 1)
    return errorStatus("op " + std::to_string(attrs.op()) +
                       " is not 0 (all-reduce sum) or 1 (all-gather)");
  const auto &group = attrs.group();
  if (group.empty())
    return errorStatus("COLLECTIVE has an empty group");
  std::set<int64_t> seen;
  for (int64_t r : group) {
    if (r < 0 || r >= static_cast<int64_t>(worldSize))
      return errorStatus("group " + listString(group) + " holds rank " +
                         std::to_string(r) + ", outside world_size " +
                         std::to_string(worldSize));
    if (!seen.insert(r).second)
      return errorStatus("group " + listString(group) + " holds rank " +
                         std::to_string(r) + " twice");
  }
  if (!seen.count(rank))
    return errorStatus("group " + listString(group) +
                       " does not hold the plan's own rank " +
                       std::to_string(rank));
  return okStatus();
}

/// SEND / RECV: a peer that is another rank of the world, a tag >= 0.
Status checkPeerStep(const Step &step, uint32_t rank, uint32_t worldSize) {
  int64_t peer = step.send_recv().peer(), tag = step.send_recv().tag();
  if (peer < 0 || peer >= static_cast<int64_t>(worldSize))
    return errorStatus("peer " + std::to_string(peer) +
                       " is outside world_size " + std::to_string(worldSize));
  if (peer == static_cast<int64_t>(rank))
    return errorStatus("peer " + std::to_string(peer) +
                       " is the plan's own rank");
  if (tag < 0)
    return errorStatus("tag " + std::to_string(tag) + " is negative");
  return okStatus();
}

Status checkSteps(const google::protobuf::RepeatedPtrField<Step> &steps,
                  const Plan &plan, const BufferIndex &byId,
                  uint32_t worldSize) {
  for (int i = 0; i < steps.size(); ++i) {
    const Step &step = steps[i];
    std::string where =
        "steps[" + std::to_string(i) + "] " + quoted(step.name()) + ": ";
    if (!Step::Kind_IsValid(step.kind()) ||
        step.kind() == Step::KIND_UNSPECIFIED)
      return errorStatus(where + "unknown kind " + std::to_string(step.kind()));
    if (Status s = checkStepBuffers(step, byId); !s.ok())
      return s.withPrefix(where);
    if (Status s = expectAttrs(step); !s.ok())
      return s.withPrefix(where);
    Status multi;
    if (step.kind() == Step::COLLECTIVE)
      multi = checkCollectiveStep(step, plan.rank(), worldSize);
    else if (step.kind() == Step::SEND || step.kind() == Step::RECV)
      multi = checkPeerStep(step, plan.rank(), worldSize);
    if (!multi.ok())
      return multi.withPrefix(where);
  }
  return okStatus();
}

/// Plan.entry_points: unique names other than "forward", graph buffers of
/// the right kinds, and steps as the forward entry's.
Status checkEntryPoints(const Plan &plan, const BufferIndex &byId,
                        uint32_t worldSize) {
  std::set<std::string> names{"forward"};
  for (int e = 0; e < plan.entry_points_size(); ++e) {
    const artifact::EntryPoint &entry = plan.entry_points(e);
    std::string where = "entry_points[" + std::to_string(e) + "] " +
                        quoted(entry.name()) + ": ";
    if (entry.name().empty() || !names.insert(entry.name()).second)
      return errorStatus(where + "name is empty, \"forward\" or repeated");
    if (Status s = checkGraphBuffers(entry.inputs(), byId, plan, Buffer::INPUT,
                                     "inputs");
        !s.ok())
      return s.withPrefix(where);
    if (Status s = checkGraphBuffers(entry.outputs(), byId, plan,
                                     Buffer::OUTPUT, "outputs");
        !s.ok())
      return s.withPrefix(where);
    if (Status s = checkSteps(entry.steps(), plan, byId, worldSize); !s.ok())
      return s.withPrefix(where);
  }
  return okStatus();
}

//===----------------------------------------------------------------------===//
// Manifest checks
//===----------------------------------------------------------------------===//

Status checkSpecs(const google::protobuf::RepeatedPtrField<TensorSpec> &specs,
                  const std::string &field) {
  std::set<std::string> names;
  for (int i = 0; i < specs.size(); ++i) {
    const TensorSpec &spec = specs[i];
    std::string where =
        field + "[" + std::to_string(i) + "] " + quoted(spec.name()) + ": ";
    if (spec.name().empty() || !names.insert(spec.name()).second)
      return errorStatus(where + "name is empty or repeated");
    if (!checkedBytes(toShape(spec.shape()), spec.dtype()).ok())
      return errorStatus(where + "bad dtype " + dtypeName(spec.dtype()) +
                         " or shape " + shapeString(toShape(spec.shape())));
  }
  return okStatus();
}

Status checkManifest(const Manifest &m) {
  if (Status s = checkFormatVersion(m.format_version(), "artifact"); !s.ok())
    return s;
  if (m.world_size() == 0)
    return errorStatus("world_size is 0");
  if (m.world_size() != static_cast<uint32_t>(m.ranks_size()))
    return errorStatus("world_size " + std::to_string(m.world_size()) +
                       " but " + std::to_string(m.ranks_size()) +
                       " ranks are listed");
  // The layout degrees, where set (an unset one counts as 1).
  uint64_t tp = m.tp() ? m.tp() : 1, pp = m.pp() ? m.pp() : 1,
           dp = m.dp() ? m.dp() : 1;
  if ((m.tp() || m.pp() || m.dp()) && tp * pp * dp != m.world_size())
    return errorStatus(
        "tp * pp * dp = " + std::to_string(tp) + " * " + std::to_string(pp) +
        " * " + std::to_string(dp) + " = " + std::to_string(tp * pp * dp) +
        " differs from world_size " + std::to_string(m.world_size()));
  uint64_t chunks = dp * (m.microbatches() ? m.microbatches() : 1);
  if (chunks > 1)
    for (const auto *specs : {&m.inputs(), &m.outputs()})
      for (const TensorSpec &spec : *specs)
        if (spec.shape().empty() || spec.shape(0) % chunks != 0)
          return errorStatus(
              (specs == &m.inputs() ? "input " : "output ") +
              quoted(spec.name()) + " " + shapeString(toShape(spec.shape())) +
              ": dim 0 cannot be cut into dp " + std::to_string(dp) +
              " x microbatches " +
              std::to_string(m.microbatches() ? m.microbatches() : 1) + " = " +
              std::to_string(chunks) + " equal chunks");
  std::set<uint32_t> listed;
  for (int i = 0; i < m.ranks_size(); ++i) {
    const RankEntry &r = m.ranks(i);
    std::string where = "ranks[" + std::to_string(i) + "]: ";
    if (r.rank() >= m.world_size())
      return errorStatus(where + "rank " + std::to_string(r.rank()) +
                         " is outside world_size " +
                         std::to_string(m.world_size()));
    if (!listed.insert(r.rank()).second)
      return errorStatus(where + "rank " + std::to_string(r.rank()) +
                         " is listed twice");
    if (Status s = checkRelativePath(r.plan_file(), "plan_file"); !s.ok())
      return s.withPrefix(where);
    if (r.plan_sha256().empty())
      return errorStatus(where + "plan_sha256 is empty");
    if (!r.weights_file().empty()) {
      if (Status s = checkRelativePath(r.weights_file(), "weights_file");
          !s.ok())
        return s.withPrefix(where);
      if (r.weights_sha256().empty())
        return errorStatus(where + "weights_sha256 is empty");
    }
  }
  if (Status s = checkSpecs(m.inputs(), "inputs"); !s.ok())
    return s;
  if (Status s = checkManifestFields(m); !s.ok())
    return s;
  return checkSpecs(m.outputs(), "outputs");
}

/// The plan's graph inputs (or outputs) must be the manifest's, in order.
/// With `subset`, a plan may list only some of them (still in order).
Status
checkInterface(const google::protobuf::RepeatedPtrField<TensorSpec> &specs,
               const google::protobuf::RepeatedField<uint32_t> &ids,
               const Plan &plan, const std::string &field, bool subset,
               const Layout &layout) {
  if (specs.size() != ids.size() && !subset)
    return errorStatus("plan has " + std::to_string(ids.size()) + " " + field +
                       ", the manifest " + std::to_string(specs.size()));
  int next = 0; // the manifest entry to match next
  for (int i = 0; i < ids.size(); ++i) {
    const Buffer *buf = nullptr;
    for (const Buffer &b : plan.buffers())
      if (b.id() == ids[i])
        buf = &b;
    if (subset) {
      int match = next;
      while (match < specs.size() && specs[match].name() != buf->name())
        ++match;
      if (match == specs.size())
        return errorStatus(field + "[" + std::to_string(i) + "]: plan buffer " +
                           quoted(buf->name()) + " is not among the " +
                           "manifest's " + field + " (or is out of order)");
      next = match;
    }
    const TensorSpec &spec = specs[subset ? next++ : i];
    // Plans hold one chunk's shape: dim 0 cut into dp * microbatches.
    Shape chunk = toShape(spec.shape());
    uint64_t chunks = layout.chunks();
    if (chunks > 1 && !chunk.empty())
      chunk[0] /= static_cast<int64_t>(chunks);
    if (buf->name() != spec.name() || buf->dtype() != spec.dtype() ||
        toShape(buf->shape()) != chunk)
      return errorStatus(
          field + "[" + std::to_string(i) + "]: plan buffer " +
          quoted(buf->name()) + " " + dtypeName(buf->dtype()) + " " +
          shapeString(toShape(buf->shape())) + " differs from the manifest's " +
          quoted(spec.name()) + " " + dtypeName(spec.dtype()) + " " +
          shapeString(toShape(spec.shape())) +
          (chunks > 1
               ? " cut into dp " + std::to_string(layout.dp) +
                     " x microbatches " + std::to_string(layout.microbatches) +
                     " chunks of " + shapeString(chunk)
               : std::string()));
  }
  return okStatus();
}

Result<Plan> readPlan(const std::string &dir, const RankEntry &entry,
                      const Manifest &manifest) {
  auto resolved = resolveInside(dir, entry.plan_file(), "plan_file");
  if (!resolved.ok())
    return resolved.status().withPrefix("rank " + std::to_string(entry.rank()) +
                                        ": ");
  std::string path = *resolved;
  auto bytes = readFileBytes(path);
  if (!bytes.ok())
    return errorStatus("rank " + std::to_string(entry.rank()) +
                       ": plan file: " + bytes.message());
  std::string digest = sha256Hex(bytes->data(), bytes->size());
  if (!sha256Matches(entry.plan_sha256(), digest))
    return errorStatus(path + ": sha256 mismatch (manifest says " +
                       entry.plan_sha256() + ", file has " + digest +
                       "): the plan was modified or is corrupt");
  Plan plan;
  if (!plan.ParseFromString(*bytes))
    return errorStatus(path + ": not a Plan (protobuf parse failed)");
  if (plan.rank() != entry.rank())
    return errorStatus(path + ": plan is for rank " +
                       std::to_string(plan.rank()) + ", listed as rank " +
                       std::to_string(entry.rank()));
  if (Status s = validatePlan(plan, path, manifest.world_size()); !s.ok())
    return s;
  // With several ranks, a rank may take only some graph inputs (a later
  // pipeline stage) and list no outputs (ranks whose outputs are not used).
  bool multi = manifest.world_size() > 1;
  Layout layout = layoutOf(manifest);
  if (Status s = checkInterface(manifest.inputs(), plan.inputs(), plan,
                                "inputs", multi, layout);
      !s.ok())
    return s.withPrefix(path + ": ");
  if (Status s = checkInterface(manifest.outputs(), plan.outputs(), plan,
                                "outputs", false, layout);
      !s.ok() && !(multi && plan.outputs().empty()))
    return s.withPrefix(path + ": ");
  return plan;
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

/// Copies the slice [begin, begin + size) of a row-major tensor.
void copySlice(const std::byte *src, const Shape &shape, const Shape &begin,
               const Shape &size, size_t elemSize, std::byte *dst) {
  size_t rank = shape.size();
  if (rank == 0 || numElements(size) == 0) {
    if (rank == 0)
      std::memcpy(dst, src, elemSize);
    return;
  }
  Shape strides(rank, 1);
  for (size_t d = rank - 1; d > 0; --d)
    strides[d - 1] = strides[d] * shape[d];
  uint64_t rowBytes = static_cast<uint64_t>(size[rank - 1]) * elemSize;
  Shape idx(rank, 0); // over the slice's outer dims
  while (true) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d)
      off += (begin[d] + idx[d]) * strides[d];
    std::memcpy(dst, src + off * elemSize, rowBytes);
    dst += rowBytes;
    size_t d = rank - 1;
    while (d > 0 && ++idx[d - 1] == size[d - 1])
      idx[--d] = 0;
    if (d == 0)
      return;
  }
}

/// The bytes a plan uses for one weight, from its full tensor's bytes.
WeightBytes holdWeight(const WeightRef &ref, const std::byte *full,
                       std::shared_ptr<const void> fileOwner) {
  size_t elemSize = dtypeSize(ref.dtype());
  if (ref.slice_size_size() == 0 &&
      reinterpret_cast<uintptr_t>(full) % elemSize == 0)
    return WeightBytes{full, ref.length(), std::move(fileOwner)};
  uint64_t bytes = *heldWeightBytes(ref);
  auto copy = std::make_shared<AlignedBuffer>(bytes);
  if (ref.slice_size_size() == 0)
    std::memcpy(copy->data(), full, bytes);
  else
    copySlice(full, toShape(ref.shape()), toShape(ref.slice_begin()),
              toShape(ref.slice_size()), elemSize, copy->data());
  return WeightBytes{copy->data(), bytes, copy};
}

/// Files a rank's weights come from, mapped once each.
class WeightLoader {
public:
  WeightLoader(const Artifact &artifact, const RankPlan &rank)
      : artifact(artifact), rank(rank) {}

  Result<WeightBytes> load(const WeightRef &ref) {
    bool packed = !ref.relative_to_model() &&
                  !rank.entry.weights_file().empty() &&
                  ref.file() == rank.entry.weights_file();
    auto path = resolve(ref);
    if (!path.ok())
      return path.status();
    auto file = map(*path);
    if (!file.ok())
      return file.status();
    auto region = packed ? packedRegion(ref, **file) : rawRegion(ref, **file);
    if (!region.ok())
      return region.status();
    if (Status s = checkHash(ref, **file, *region); !s.ok())
      return s;
    return holdWeight(ref, (*file)->data() + *region, *file);
  }

private:
  Result<std::string> resolve(const WeightRef &ref) {
    // Symlinks are resolved and must stay in the directory (SafeFile.h).
    if (!ref.relative_to_model())
      return resolveInside(artifact.dir, ref.file(), "file");
    const std::string &model = artifact.manifest.source_model();
    if (model.empty() || model[0] != '/')
      return errorStatus("relative_to_model is set but the manifest's "
                         "source_model " +
                         quoted(model) + " is not an absolute path");
    return resolveInside(parentDir(model), ref.file(), "file");
  }

  Result<std::shared_ptr<MappedFile>> map(const std::string &path) {
    auto it = files.find(path);
    if (it != files.end())
      return it->second;
    auto file = MappedFile::open(path);
    if (!file.ok())
      return file.status();
    if (Status s = checkSourceHash(path, **file); !s.ok())
      return s;
    files.emplace(path, *file);
    return *file;
  }

  /// Weights read from the source model file itself: the file must still be
  /// the one compiled (the manifest's source_sha256).
  Status checkSourceHash(const std::string &path, const MappedFile &file) {
    const Manifest &m = artifact.manifest;
    if (m.source_sha256().empty() || path != m.source_model())
      return okStatus();
    std::string digest = sha256Hex(file.data(), file.size());
    if (sha256Matches(m.source_sha256(), digest))
      return okStatus();
    return errorStatus(path +
                       ": sha256 mismatch (the manifest's "
                       "source_sha256 says " +
                       m.source_sha256() + ", file has " + digest +
                       "): the model changed after compiling");
  }

  Result<uint64_t> rawRegion(const WeightRef &ref, const MappedFile &file) {
    if (ref.offset() > file.size() || ref.length() > file.size() - ref.offset())
      return errorStatus(
          file.path() + ": range [" + std::to_string(ref.offset()) + ", " +
          std::to_string(ref.offset()) + " + " + std::to_string(ref.length()) +
          ") is past the end of the file (" + std::to_string(file.size()) +
          " bytes)");
    return ref.offset();
  }

  Result<uint64_t> packedRegion(const WeightRef &ref, const MappedFile &file) {
    if (Status s = openPacked(file); !s.ok())
      return s;
    auto it = packedHeader->tensors.find(ref.name());
    if (it == packedHeader->tensors.end())
      return errorStatus(file.path() + ": no tensor named " +
                         quoted(ref.name()));
    const SafetensorsTensor &t = it->second;
    if (t.dtype != ref.dtype() || t.shape != toShape(ref.shape()))
      return errorStatus(file.path() + ": tensor is " + t.dtypeName + " " +
                         shapeString(t.shape) + ", the plan expects " +
                         dtypeName(ref.dtype()) + " " +
                         shapeString(toShape(ref.shape())));
    // The tensor is found by name; an offset, when given, must agree.
    if (ref.offset() != 0 && ref.offset() != t.begin)
      return errorStatus(
          file.path() + ": offset " + std::to_string(ref.offset()) +
          " differs from the header's [" + std::to_string(t.begin) + ", " +
          std::to_string(t.end) + ")");
    return t.begin;
  }

  /// Checks the packed file's whole-file hash and parses its header, once.
  Status openPacked(const MappedFile &file) {
    if (packedHeader)
      return okStatus();
    std::string digest = sha256Hex(file.data(), file.size());
    if (!sha256Matches(rank.entry.weights_sha256(), digest))
      return errorStatus(file.path() + ": sha256 mismatch (manifest says " +
                         rank.entry.weights_sha256() + ", file has " + digest +
                         ")");
    auto header = parseSafetensors(file.data(), file.size(), file.path());
    if (!header.ok())
      return header.status();
    packedHeader = std::make_unique<SafetensorsHeader>(std::move(*header));
    return okStatus();
  }

  Status checkHash(const WeightRef &ref, const MappedFile &file,
                   uint64_t offset) {
    if (ref.sha256().empty())
      return okStatus();
    std::string digest = sha256Hex(file.data() + offset, ref.length());
    if (sha256Matches(ref.sha256(), digest))
      return okStatus();
    return errorStatus(file.path() + ": sha256 mismatch of bytes [" +
                       std::to_string(offset) + ", " +
                       std::to_string(offset + ref.length()) + ") (plan says " +
                       ref.sha256() + ", file has " + digest + ")");
  }

  const Artifact &artifact;
  const RankPlan &rank;
  std::map<std::string, std::shared_ptr<MappedFile>> files;
  std::unique_ptr<SafetensorsHeader> packedHeader;
};

} // namespace

//===----------------------------------------------------------------------===//
// Public functions
//===----------------------------------------------------------------------===//

Status setSourceModelDir(Manifest &manifest, const std::string &dir) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(dir, ec);
  if (ec || !std::filesystem::is_directory(abs, ec))
    return errorStatus("--model-dir '" + dir + "' is not a directory");
  std::filesystem::path name =
      std::filesystem::path(manifest.source_model()).filename();
  if (name.empty())
    return errorStatus("--model-dir: the manifest names no source model");
  manifest.set_source_model((abs / name).lexically_normal().string());
  return okStatus();
}

Result<uint64_t> heldWeightBytes(const WeightRef &ref) {
  if (ref.slice_size_size() == 0)
    return checkedBytes(toShape(ref.shape()), ref.dtype());
  return checkedBytes(toShape(ref.slice_size()), ref.dtype());
}

Status validatePlan(const Plan &plan, const std::string &where,
                    uint32_t worldSize) {
  std::string prefix = where + ": ";
  if (Status s = checkFormatVersion(plan.format_version(), "plan"); !s.ok())
    return s.withPrefix(prefix);
  if (Status s = checkWeightRefs(plan); !s.ok())
    return s.withPrefix(prefix);
  auto byId = indexBuffers(plan);
  if (!byId.ok())
    return byId.status().withPrefix(prefix);
  if (Status s = checkGraphBuffers(plan.inputs(), *byId, plan, Buffer::INPUT,
                                   "inputs");
      !s.ok())
    return s.withPrefix(prefix);
  if (Status s = checkGraphBuffers(plan.outputs(), *byId, plan, Buffer::OUTPUT,
                                   "outputs");
      !s.ok())
    return s.withPrefix(prefix);
  if (plan.rank() >= worldSize)
    return errorStatus(prefix + "rank " + std::to_string(plan.rank()) +
                       " is outside world_size " + std::to_string(worldSize));
  if (Status s = checkSteps(plan.steps(), plan, *byId, worldSize); !s.ok())
    return s.withPrefix(prefix);
  if (Status s = checkEntryPoints(plan, *byId, worldSize); !s.ok())
    return s.withPrefix(prefix);
  // Before any rank allocates or runs: the arena fits the machine, and the
  // steps read only memory written before them (PlanValidator.h).
  if (Status s = checkArenaLimit(plan); !s.ok())
    return s.withPrefix(prefix);
  return checkStepDataflow(plan).withPrefix(prefix);
}

bool isPagedCache(const Buffer &buf) {
  return buf.kind() == Buffer::STATE && buf.shape_size() > 0 &&
         buf.shape(0) == 0;
}

Layout layoutOf(const Manifest &manifest) {
  Layout layout;
  if (!manifest.tp() && !manifest.pp() && !manifest.dp())
    layout.tp = manifest.world_size();
  else {
    layout.tp = manifest.tp() ? manifest.tp() : 1;
    layout.pp = manifest.pp() ? manifest.pp() : 1;
    layout.dp = manifest.dp() ? manifest.dp() : 1;
  }
  layout.microbatches = manifest.microbatches() ? manifest.microbatches() : 1;
  return layout;
}

Result<Artifact> readManifest(const std::string &dir) {
  Artifact artifact;
  artifact.dir = dir;
  std::string manifestPath = joinPath(dir, "manifest.pb");
  auto bytes = readFileBytes(manifestPath);
  if (!bytes.ok())
    return errorStatus(bytes.message() + " (is '" + dir +
                       "' a weft artifact directory?)");
  if (!artifact.manifest.ParseFromString(*bytes))
    return errorStatus(manifestPath +
                       ": not a Manifest (protobuf parse failed)");
  if (Status s = checkManifest(artifact.manifest); !s.ok())
    return s.withPrefix(manifestPath + ": ");
  if (Status s = checkKernelFiles(dir, artifact.manifest); !s.ok())
    return s.withPrefix(manifestPath + ": ");
  return artifact;
}

Result<std::map<std::string, std::string>>
readArtifactTokenizerFiles(const std::string &dir) {
  auto artifact = readManifest(dir);
  if (!artifact.ok())
    return artifact.status();
  std::map<std::string, std::string> files;
  for (const auto &f : artifact->manifest.tokenizer_files()) {
    // Inside the artifact: no "..", absolute path or link out of it.
    auto resolved = resolveInside(dir, f.file(), "tokenizer_files.file");
    if (!resolved.ok())
      return resolved.status();
    std::string path = *resolved;
    auto bytes = readFileBytes(path);
    if (!bytes.ok())
      return bytes.status();
    if (!sha256Matches(f.sha256(), sha256Hex(bytes->data(), bytes->size())))
      return errorStatus(path + ": SHA-256 does not match the manifest (the "
                                "tokenizer file was modified after compile)");
    files[f.name()] = std::move(*bytes);
  }
  if (files.empty())
    return errorStatus(dir + ": the artifact carries no tokenizer (compile "
                             "with --tokenizer DIR)");
  return files;
}

Result<RankPlan> readRankPlan(const Artifact &artifact, uint32_t rank) {
  for (const RankEntry &entry : artifact.manifest.ranks()) {
    if (entry.rank() != rank)
      continue;
    auto plan = readPlan(artifact.dir, entry, artifact.manifest);
    if (!plan.ok())
      return plan.status();
    RankPlan rp;
    rp.entry = entry;
    rp.planPath = joinPath(artifact.dir, entry.plan_file());
    rp.plan = std::move(*plan);
    return rp;
  }
  return errorStatus("rank " + std::to_string(rank) +
                     " is not in the artifact (world_size " +
                     std::to_string(artifact.manifest.world_size()) + ")");
}

Result<Artifact> readArtifact(const std::string &dir) {
  auto artifact = readManifest(dir);
  if (!artifact.ok())
    return artifact.status();
  for (uint32_t r = 0; r < artifact->manifest.world_size(); ++r) {
    auto rank = readRankPlan(*artifact, r);
    if (!rank.ok())
      return rank.status();
    artifact->ranks.push_back(std::move(*rank));
  }
  return artifact;
}

Status loadWeights(const Artifact &artifact, RankPlan &rank) {
  WeightLoader loader(artifact, rank);
  std::vector<WeightBytes> weights;
  for (int i = 0; i < rank.plan.weights_size(); ++i) {
    const WeightRef &ref = rank.plan.weights(i);
    auto bytes = loader.load(ref);
    if (!bytes.ok())
      return bytes.status().withPrefix("weight " + quoted(ref.name()) + ": ");
    weights.push_back(std::move(*bytes));
  }
  rank.weights = std::move(weights);
  return okStatus();
}

Status loadRankWeights(Artifact &artifact, uint32_t rank) {
  if (rank >= artifact.ranks.size())
    return errorStatus("rank " + std::to_string(rank) +
                       " is not in the artifact (" +
                       std::to_string(artifact.ranks.size()) + " ranks)");
  return loadWeights(artifact, artifact.ranks[rank]);
}

} // namespace weft::runtime
