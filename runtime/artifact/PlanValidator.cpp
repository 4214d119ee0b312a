// Invariants of an artifact the runtime relies on beyond its schema.
#include "runtime/artifact/PlanValidator.h"

#include "runtime/artifact/Sha256.h"
#include "runtime/support/SafeFile.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>
#include <unistd.h>
#include <unordered_map>

namespace weft::runtime {

using artifact::Buffer;
using artifact::Manifest;
using artifact::Plan;
using artifact::Step;

namespace {

std::string quoted(const std::string &s) { return "'" + s + "'"; }

/// Degrees and micro-batches beyond these are typos, not layouts: they would
/// only make the runtime allocate per-rank or per-chunk state for nothing.
constexpr uint32_t kMaxWorldSize = 1u << 16;
constexpr uint32_t kMaxMicrobatches = 1u << 16;

bool isHexDigest(const std::string &s) {
  if (s.size() != 64)
    return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return false;
  return true;
}

/// "cpu", or "sm_" and a compute capability with an optional a/f suffix.
bool isKnownTarget(const std::string &target) {
  if (target == "cpu")
    return true;
  if (target.rfind("sm_", 0) != 0)
    return false;
  size_t end = target.size();
  if (end > 3 && (target.back() == 'a' || target.back() == 'f'))
    --end;
  if (end - 3 < 2 || end - 3 > 3)
    return false;
  for (size_t i = 3; i < end; ++i)
    if (!std::isdigit(static_cast<unsigned char>(target[i])))
      return false;
  return true;
}

/// Arena bytes written so far, as disjoint [begin, end) ranges.
class WrittenRanges {
public:
  void add(uint64_t begin, uint64_t end) {
    if (begin >= end)
      return;
    auto it = ranges.upper_bound(begin);
    if (it != ranges.begin() && std::prev(it)->second >= begin)
      --it;
    while (it != ranges.end() && it->first <= end) {
      begin = std::min(begin, it->first);
      end = std::max(end, it->second);
      it = ranges.erase(it);
    }
    ranges.emplace(begin, end);
  }
  bool covers(uint64_t begin, uint64_t end) const {
    if (begin >= end)
      return true;
    auto it = ranges.upper_bound(begin);
    if (it == ranges.begin())
      return false;
    --it;
    return it->first <= begin && it->second >= end;
  }

private:
  std::map<uint64_t, uint64_t> ranges;
};

bool inArena(const Buffer &buf) {
  return buf.kind() == Buffer::ARENA || buf.kind() == Buffer::INPUT ||
         buf.kind() == Buffer::OUTPUT;
}

bool overlaps(const Buffer &a, const Buffer &b) {
  return a.bytes() && b.bytes() && a.offset() < b.offset() + b.bytes() &&
         b.offset() < a.offset() + a.bytes();
}

} // namespace

Result<uint64_t> arenaLimitBytes() {
  if (const char *env = std::getenv("WEFT_MAX_ARENA_BYTES")) {
    std::string text = env;
    uint64_t value = 0;
    auto [ptr, ec] =
        std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value == 0)
      return errorStatus("WEFT_MAX_ARENA_BYTES=" + quoted(text) +
                         " is not a positive number of bytes");
    return value;
  }
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0)
    return ~uint64_t{0}; // unknown: the allocation itself is the check
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

namespace {

/// The generation settings (weft compile --generate) within the bounds
/// the runtime sizes its tables and buffers by.
Status checkGenerationFields(const Manifest &m) {
  const artifact::Generation &g = m.generation();
  auto range = [](const std::string &field, int64_t v, int64_t lo,
                  int64_t hi) -> Status {
    if (v < lo || v > hi)
      return errorStatus("generation." + field + " " + std::to_string(v) +
                         " is not in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "]");
    return okStatus();
  };
  constexpr int64_t kMaxTokens = int64_t(1) << 24, kMaxRows = 1 << 16;
  for (Status s : {range("max_seq", g.max_seq(), 1, kMaxTokens),
                   range("block_size", g.block_size(), 1, 1 << 16),
                   range("blocks_per_seq", g.blocks_per_seq(), 1, kMaxTokens),
                   range("prefill_rows", g.prefill_rows(), 1, kMaxRows),
                   range("layers", g.layers(), 0, 1 << 16),
                   range("vocab", g.vocab(), 0, int64_t(1) << 31)})
    if (!s.ok())
      return s;
  if (g.blocks_per_seq() * g.block_size() < g.max_seq() ||
      (g.blocks_per_seq() - 1) * g.block_size() >= g.max_seq())
    return errorStatus("generation.blocks_per_seq " +
                       std::to_string(g.blocks_per_seq()) +
                       " is not ceil(max_seq / block_size)");
  if (g.prompt_buckets().empty() || g.batch_buckets().empty())
    return errorStatus("generation has no prompt or no batch buckets");
  for (int64_t b : g.prompt_buckets())
    if (Status s = range("prompt_buckets", b, 1, kMaxTokens); !s.ok())
      return s;
  for (int64_t b : g.batch_buckets())
    if (Status s = range("batch_buckets", b, 1, kMaxRows); !s.ok())
      return s;
  if (g.token_input().empty() || g.logits_output().empty())
    return errorStatus("generation.token_input or logits_output is empty");
  for (uint64_t b : g.kv_block_bytes())
    if (b > (uint64_t(1) << 40))
      return errorStatus("generation.kv_block_bytes " + std::to_string(b) +
                         " is above 2^40");
  for (const artifact::GenerationEntry &e : g.entries()) {
    if (Status s = range("entries.tokens", e.tokens(), 1, kMaxTokens); !s.ok())
      return s;
    if (Status s = range("entries.rows", e.rows(), 1, kMaxRows); !s.ok())
      return s;
  }
  return okStatus();
}

} // namespace

Status checkManifestFields(const Manifest &m) {
  if (m.world_size() > kMaxWorldSize)
    return errorStatus("world_size " + std::to_string(m.world_size()) +
                       " is above " + std::to_string(kMaxWorldSize));
  // An artifact states its whole layout; one that states none of tp, pp and
  // dp is of one degree (tp = world_size). A stated 0 is never meaningful.
  bool stated = m.tp() || m.pp() || m.dp();
  for (auto [name, value] : {std::pair<const char *, uint32_t>{"tp", m.tp()},
                             {"pp", m.pp()},
                             {"dp", m.dp()}})
    if (stated && value == 0)
      return errorStatus(std::string(name) +
                         " is 0 (each layout degree is at least 1)");
  if (stated && m.microbatches() == 0)
    return errorStatus("microbatches is 0 (at least 1)");
  if (m.microbatches() > kMaxMicrobatches)
    return errorStatus("microbatches " + std::to_string(m.microbatches()) +
                       " is above " + std::to_string(kMaxMicrobatches));
  if (!m.target().empty() && !isKnownTarget(m.target()))
    return errorStatus("target " + quoted(m.target()) +
                       " is not 'cpu' or a GPU architecture 'sm_NN'");
  if (stated && m.target().empty())
    return errorStatus("target is empty ('cpu' or a GPU architecture)");
  // The writer hashes the model it compiled: without the hash, a changed
  // model file would go unnoticed.
  if (!m.source_model().empty() && m.source_sha256().empty())
    return errorStatus("source_sha256 is empty, but source_model " +
                       quoted(m.source_model()) +
                       " is given (its SHA-256 is required)");
  if (!m.source_sha256().empty() && !isHexDigest(m.source_sha256()))
    return errorStatus("source_sha256 " + quoted(m.source_sha256()) +
                       " is not a SHA-256 (64 hex digits)");
  if (m.has_kernels() && m.target() == "cpu")
    return errorStatus("kernels are given for target 'cpu'");
  if (m.has_generation())
    return checkGenerationFields(m);
  return okStatus();
}

Status checkKernelFiles(const std::string &dir, const Manifest &m) {
  if (!m.has_kernels())
    return okStatus();
  const artifact::KernelModule &k = m.kernels();
  if (!isKnownTarget(k.arch()) || k.arch() == "cpu")
    return errorStatus("kernels.arch " + quoted(k.arch()) +
                       " is not a GPU architecture");
  struct File {
    const char *field;
    const std::string &name, &sha;
  };
  for (const File &f : {File{"source_file", k.source_file(), k.source_sha256()},
                        File{"cubin_file", k.cubin_file(), k.cubin_sha256()},
                        File{"ptx_file", k.ptx_file(), k.ptx_sha256()}}) {
    std::string field = std::string("kernels.") + f.field;
    if (f.name.empty()) {
      if (std::string(f.field) == "source_file")
        return errorStatus(field + " is empty");
      continue;
    }
    auto path = resolveInside(dir, f.name, field);
    if (!path.ok())
      return path.status();
    if (!isHexDigest(f.sha))
      return errorStatus(field + " " + quoted(f.name) +
                         ": its sha256 is missing or not 64 hex digits");
    auto bytes = readRegularFile(*path);
    if (!bytes.ok())
      return bytes.status().withPrefix(field + ": ");
    std::string digest = sha256Hex(bytes->data(), bytes->size());
    if (!sha256Matches(f.sha, digest))
      return errorStatus(*path + ": sha256 mismatch (manifest's " + field +
                         " says " + f.sha + ", file has " + digest +
                         "): the kernel file was modified or is corrupt");
  }
  if (k.cubin_file().empty() && k.ptx_file().empty())
    return errorStatus("kernels: neither cubin_file nor ptx_file is given");
  return okStatus();
}

Status checkArenaLimit(const Plan &plan) {
  auto limit = arenaLimitBytes();
  if (!limit.ok())
    return limit.status();
  if (plan.arena_bytes() > *limit)
    return errorStatus("arena_bytes " + std::to_string(plan.arena_bytes()) +
                       " is more than this machine allows (" +
                       std::to_string(*limit) + " bytes: " +
                       (std::getenv("WEFT_MAX_ARENA_BYTES")
                            ? "WEFT_MAX_ARENA_BYTES"
                            : "its physical memory") +
                       ")");
  return okStatus();
}

uint64_t largestKvBlockBytes(const artifact::Generation &generation) {
  uint64_t largest = 0;
  for (uint64_t b : generation.kv_block_bytes())
    largest = std::max(largest, b);
  return largest;
}

Status checkKvCacheLimit(uint64_t blocks,
                         const artifact::Generation &generation,
                         const std::string &flags) {
  uint64_t blockBytes = largestKvBlockBytes(generation);
  auto limit = arenaLimitBytes();
  if (!limit.ok())
    return limit.status();
  if (blockBytes && blocks > *limit / blockBytes)
    return errorStatus("a KV cache of " + std::to_string(blocks) +
                       " blocks of " + std::to_string(blockBytes) +
                       " bytes is more than this machine allows (" +
                       std::to_string(*limit) + " bytes); lower " + flags);
  return okStatus();
}

namespace {
Status checkStepsDataflow(
    const Plan &plan,
    const google::protobuf::RepeatedPtrField<artifact::Step> &steps,
    const google::protobuf::RepeatedField<uint32_t> &outputs,
    const std::string &field) {
  std::unordered_map<uint32_t, const Buffer *> byId;
  WrittenRanges written;
  for (const Buffer &buf : plan.buffers()) {
    byId.emplace(buf.id(), &buf);
    if (buf.kind() == Buffer::INPUT)
      written.add(buf.offset(), buf.offset() + buf.bytes());
  }
  for (int i = 0; i < steps.size(); ++i) {
    const Step &step = steps[i];
    std::string where =
        field + "[" + std::to_string(i) + "] " + quoted(step.name()) + ": ";
    for (uint32_t id : step.inputs()) {
      const Buffer &in = *byId.at(id);
      if (inArena(in) && !written.covers(in.offset(), in.offset() + in.bytes()))
        return errorStatus(where + "reads buffer " + std::to_string(id) +
                           " (arena [" + std::to_string(in.offset()) + ", " +
                           std::to_string(in.offset() + in.bytes()) +
                           ")) before any step writes it");
    }
    bool noAlias =
        step.kind() == Step::GEMM || step.kind() == Step::ATTENTION ||
        step.kind() == Step::PAGED_ATTENTION || step.kind() == Step::SAMPLE;
    // A GEMM's residual (its last input) is read element by element as the
    // output is written, so it may share the output's place.
    int checked = step.inputs_size();
    if (step.kind() == Step::GEMM && step.gemm().has_residual())
      --checked;
    for (uint32_t id : step.outputs()) {
      const Buffer &out = *byId.at(id);
      if (noAlias)
        for (int j = 0; j < checked; ++j) {
          uint32_t inId = step.inputs(j);
          const Buffer &in = *byId.at(inId);
          if (inArena(in) && overlaps(in, out))
            return errorStatus(where + "output buffer " + std::to_string(id) +
                               " overlaps input buffer " +
                               std::to_string(inId) + " in the arena, which " +
                               Step::Kind_Name(step.kind()) +
                               " does not allow");
        }
    }
    for (uint32_t id : step.outputs()) {
      const Buffer &out = *byId.at(id);
      written.add(out.offset(), out.offset() + out.bytes());
    }
  }
  // What the run returns was computed: an output no step writes would hand
  // back whatever the arena held.
  for (uint32_t id : outputs) {
    auto it = byId.find(id);
    if (it == byId.end())
      continue; // refused by the buffer checks
    const Buffer &out = *it->second;
    if (inArena(out) && out.bytes() &&
        !written.covers(out.offset(), out.offset() + out.bytes()))
      return errorStatus(field + ": output buffer " + std::to_string(id) +
                         (out.name().empty() ? "" : " " + quoted(out.name())) +
                         " is never written by a step");
  }
  return okStatus();
}
} // namespace

Status checkStepDataflow(const Plan &plan) {
  // Every entry point starts from the same arena: only its inputs (and the
  // state and weights outside the arena) hold data when it begins. State
  // buffers (KV caches among them) always count as written: they persist
  // from one run to the next, zeroed when the session opens.
  if (Status s =
          checkStepsDataflow(plan, plan.steps(), plan.outputs(), "steps");
      !s.ok())
    return s;
  for (int e = 0; e < plan.entry_points_size(); ++e)
    if (Status s = checkStepsDataflow(
            plan, plan.entry_points(e).steps(), plan.entry_points(e).outputs(),
            "entry_points[" + std::to_string(e) + "].steps");
        !s.ok())
      return s;
  return okStatus();
}

} // namespace weft::runtime
