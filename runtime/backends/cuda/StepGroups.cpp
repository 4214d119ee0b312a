#include "runtime/backends/cuda/StepGroups.h"

#include <algorithm>

namespace weft::runtime::cuda {

using artifact::Instr;
using artifact::Step;

namespace {

/// Steps a group of projections may span: past this, the activations have
/// long been consumed.
constexpr size_t kWindow = 16;

bool overlaps(const Region &a, const Region &b) {
  auto *pa = static_cast<const std::byte *>(a.data);
  auto *pb = static_cast<const std::byte *>(b.data);
  return a.bytes && b.bytes && pa < pb + b.bytes && pb < pa + a.bytes;
}

bool anyOverlap(const std::vector<Region> &a, const std::vector<Region> &b) {
  for (const Region &x : a)
    for (const Region &y : b)
      if (overlaps(x, y))
        return true;
  return false;
}

struct Access {
  std::vector<Region> reads, writes;
};

std::vector<Access> accesses(std::span<const Step *const> steps,
                             const std::function<Region(uint32_t)> &region) {
  std::vector<Access> access(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    for (uint32_t id : steps[i]->inputs())
      access[i].reads.push_back(region(id));
    for (uint32_t id : steps[i]->outputs())
      access[i].writes.push_back(region(id));
  }
  return access;
}

bool same(const Region &a, const Region &b) {
  return a.data == b.data && a.bytes == b.bytes;
}

/// Whether `outer` holds every byte of `inner`.
bool covers(const Region &outer, const Region &inner) {
  auto *po = static_cast<const std::byte *>(outer.data);
  auto *pi = static_cast<const std::byte *>(inner.data);
  return po <= pi && pi + inner.bytes <= po + outer.bytes;
}

} // namespace

std::optional<std::pair<int, int>> swigluInputs(const Step &step) {
  if (step.kind() != Step::ELEMENTWISE || step.program_size() != 4 ||
      step.inputs_size() != 2 || step.outputs_size() != 1)
    return std::nullopt;
  const auto &prog = step.program();
  const Instr &last = prog[3];
  for (const Instr &in : prog)
    if (in.dtype() != last.dtype())
      return std::nullopt;
  if (last.dtype() != artifact::BF16 && last.dtype() != artifact::F16)
    return std::nullopt;
  // One SILU of an INPUT, the last a MUL of it and the other INPUT.
  int silu = -1;
  for (int i = 0; i < 3; ++i)
    if (prog[i].op() == Instr::SILU)
      silu = i;
  if (silu < 0 || last.op() != Instr::MUL || last.args_size() != 2 ||
      prog[silu].args_size() != 1)
    return std::nullopt;
  uint32_t other =
      last.args(0) == static_cast<uint32_t>(silu) ? last.args(1) : last.args(0);
  if ((last.args(0) != static_cast<uint32_t>(silu) &&
       last.args(1) != static_cast<uint32_t>(silu)) ||
      other >= 3)
    return std::nullopt;
  const Instr &gate = prog[prog[silu].args(0)];
  const Instr &up = prog[other];
  if (prog[silu].args(0) >= 3 || gate.op() != Instr::INPUT ||
      up.op() != Instr::INPUT || gate.index() == up.index() ||
      gate.index() > 1 || up.index() > 1)
    return std::nullopt;
  return std::make_pair(static_cast<int>(gate.index()),
                        static_cast<int>(up.index()));
}

std::vector<StepGroup>
findStepGroups(std::span<const Step *const> steps,
               const std::function<Region(uint32_t)> &region,
               const std::function<bool(size_t, size_t)> &groupable,
               const std::function<bool(size_t, size_t)> &normable,
               std::span<const uint32_t> outputs, size_t maxMembers) {
  const size_t n = steps.size();
  const std::vector<Access> access = accesses(steps, region);
  // A step inside a group's span belongs to that group's reasoning:
  // spans never overlap, so that no two moves interact.
  std::vector<bool> locked(n, false);
  std::vector<StepGroup> groups;
  auto free = [&](size_t lo, size_t hi) {
    for (size_t t = lo; t <= hi; ++t)
      if (locked[t])
        return false;
    return true;
  };
  auto lock = [&](size_t lo, size_t hi) {
    for (size_t t = lo; t <= hi; ++t)
      locked[t] = true;
  };
  auto readers = [&](uint32_t id) {
    size_t count = 0;
    for (const Step *s : steps)
      count += std::count(s->inputs().begin(), s->inputs().end(), id);
    return count;
  };
  auto lastWriter = [&](uint32_t id, size_t before) -> std::optional<size_t> {
    for (size_t t = before; t-- > 0;)
      if (std::count(steps[t]->outputs().begin(), steps[t]->outputs().end(),
                     id))
        return t;
    return std::nullopt;
  };
  auto isOutput = [&](uint32_t id) {
    return std::find(outputs.begin(), outputs.end(), id) != outputs.end();
  };
  // Whether a step after `after` reads buffer `id`'s bytes through another
  // buffer before they are written again (a reader the move would not
  // see).
  auto readThroughAlias = [&](uint32_t id, size_t after) {
    const Region bytes = region(id);
    for (size_t t = after + 1; t < n; ++t) {
      for (uint32_t other : steps[t]->inputs())
        if (other != id && overlaps(region(other), bytes))
          return true;
      if (anyOverlap(access[t].writes, {bytes}))
        return false;
    }
    return false;
  };

  // The RMS norm whose output only `group`'s members read (its first at
  // `lo`): its launch can normalize instead, if nothing overwrites the
  // norm's input and scale before, nothing reads the norm's bytes through
  // another buffer, and the launch writes neither.
  auto absorbNorm = [&](StepGroup &group, size_t lo) {
    uint32_t act = steps[group.members[0]]->inputs(0);
    auto r = lastWriter(act, lo);
    if (!r || steps[*r]->kind() != Step::RMS_NORM ||
        steps[*r]->outputs_size() != 1 || !normable(*r, group.members[0]) ||
        readers(act) != group.members.size() || isOutput(act) ||
        !free(*r, lo - 1))
      return;
    const std::vector<Region> &normReads = access[*r].reads;
    for (size_t t = *r + 1; t < group.at; ++t)
      if (std::find(group.members.begin(), group.members.end(), t) ==
              group.members.end() &&
          anyOverlap(access[t].writes, normReads))
        return;
    std::vector<Region> written;
    if (group.swiglu)
      written.push_back(group.productInto >= 0
                            ? access[group.members[group.productInto]].writes[0]
                            : access[group.at].writes[0]);
    else
      for (size_t m : group.members)
        written.push_back(access[m].writes[0]);
    if (anyOverlap(written, normReads))
      return;
    if (readThroughAlias(act, *r))
      return;
    group.norm = *r;
    lock(*r, lo - 1);
  };

  // Gated pairs: the launch at the silu(gate) * up step reads what the
  // two projections read, and writes neither of their outputs.
  for (size_t s = 0; s < n; ++s) {
    auto in = swigluInputs(*steps[s]);
    if (!in)
      continue;
    uint32_t gateId = steps[s]->inputs(in->first);
    uint32_t upId = steps[s]->inputs(in->second);
    auto g = lastWriter(gateId, s), u = lastWriter(upId, s);
    if (!g || !u || *g == *u || steps[*g]->outputs_size() != 1 ||
        steps[*u]->outputs_size() != 1 || !groupable(*g, *u))
      continue;
    if (readers(gateId) != 1 || readers(upId) != 1 || isOutput(gateId) ||
        isOutput(upId))
      continue;
    // One kernel reads the activations and writes the product: where the
    // product's bytes are the activations', it goes to the up (or gate)
    // projection's bytes, free from this step on, if nothing overwrites
    // them before the product's last reader and every read of the
    // product's bytes until then is a read of the product.
    int into = -1;
    size_t until = s;
    if (anyOverlap(access[s].writes, access[*g].reads) ||
        anyOverlap(access[s].writes, access[*u].reads)) {
      uint32_t productId = steps[s]->outputs(0);
      if (isOutput(productId))
        continue;
      for (size_t t = s + 1; t < n; ++t)
        if (std::count(steps[t]->inputs().begin(), steps[t]->inputs().end(),
                       productId))
          until = t;
      // Until the product's bytes are written again, only the product
      // may be read from them.
      bool aliased = readThroughAlias(productId, s);
      for (int member : {1, 0}) {
        const Region target = access[member == 0 ? *g : *u].writes[0];
        bool fits = !aliased;
        for (size_t t = s + 1; t <= until && fits; ++t)
          fits = !anyOverlap(access[t].writes, {target});
        if (fits) {
          into = member;
          break;
        }
      }
      if (into < 0 || !free(s, until))
        continue;
    }
    size_t lo = std::min(*g, *u);
    if (!free(lo, s))
      continue;
    bool clear = true;
    for (size_t t = lo + 1; t < s && clear; ++t)
      if (t != *g && t != *u)
        clear = !anyOverlap(access[t].writes, access[*g].reads) &&
                !anyOverlap(access[t].writes, access[*u].reads);
    if (!clear)
      continue;
    groups.push_back({{*g, *u}, true, s, into, until, std::nullopt});
    lock(lo, until);
    absorbNorm(groups.back(), lo);
  }

  // Projections of the same activations, run where the last stands.
  for (size_t i = 0; i < n; ++i) {
    if (locked[i] || steps[i]->kind() != Step::GEMM ||
        access[i].reads.empty() ||
        anyOverlap(access[i].writes, access[i].reads))
      continue;
    std::vector<size_t> members = {i};
    for (size_t j = i + 1; j < n && j <= i + kWindow; ++j) {
      if (members.size() >= maxMembers || locked[j])
        break;
      // Once the activations are overwritten no later step reads them.
      if (anyOverlap(access[j].writes, {access[i].reads[0]}))
        break;
      if (steps[j]->kind() != Step::GEMM || !groupable(i, j) ||
          anyOverlap(access[j].writes, access[j].reads))
        continue;
      // j must not touch what the members write, nor they what j writes;
      // and no step between a member and j may see the move.
      bool fits = true;
      for (size_t m : members)
        fits = fits && !anyOverlap(access[j].writes, access[m].reads) &&
               !anyOverlap(access[j].writes, access[m].writes) &&
               !anyOverlap(access[j].reads, access[m].writes);
      for (size_t m : members)
        for (size_t t = m + 1; t < j && fits; ++t) {
          if (std::find(members.begin(), members.end(), t) != members.end())
            continue;
          fits = !anyOverlap(access[t].reads, access[m].writes) &&
                 !anyOverlap(access[t].writes, access[m].reads) &&
                 !anyOverlap(access[t].writes, access[m].writes);
        }
      if (fits)
        members.push_back(j);
    }
    if (members.size() < 2)
      continue;
    groups.push_back(
        {members, false, members.back(), -1, members.back(), std::nullopt});
    lock(members.front(), members.back());
    absorbNorm(groups.back(), members.front());
  }
  std::sort(groups.begin(), groups.end(),
            [](const StepGroup &a, const StepGroup &b) { return a.at < b.at; });
  return groups;
}

std::vector<RotaryFusion>
findRotaryFusions(std::span<const Step *const> steps,
                  const std::function<Region(uint32_t)> &region,
                  std::span<const uint32_t> outputs) {
  const size_t n = steps.size();
  const std::vector<Access> access = accesses(steps, region);
  std::vector<RotaryFusion> fusions;
  for (size_t a = 0; a < n; ++a) {
    const Step &att = *steps[a];
    if (att.kind() != Step::PAGED_ATTENTION || att.inputs_size() != 8 ||
        att.outputs_size() != 1)
      continue;
    // The ROTARY step that last wrote q's (k's) bytes, its output exactly
    // them.
    auto rotaryOf = [&](int input) -> std::optional<size_t> {
      const Region bytes = access[a].reads[input];
      for (size_t t = a; t-- > 0;) {
        if (!anyOverlap(access[t].writes, {bytes}))
          continue;
        if (steps[t]->kind() != Step::ROTARY || steps[t]->inputs_size() != 3 ||
            steps[t]->outputs_size() != 1 || !same(access[t].writes[0], bytes))
          return std::nullopt;
        return t;
      }
      return std::nullopt;
    };
    auto rq = rotaryOf(0), rk = rotaryOf(1);
    if (!rq || !rk || *rq == *rk)
      continue;
    std::vector<Region> rotaryReads = access[*rq].reads;
    rotaryReads.insert(rotaryReads.end(), access[*rk].reads.begin(),
                       access[*rk].reads.end());
    const std::vector<Region> rotated = {access[*rq].writes[0],
                                         access[*rk].writes[0]};
    // Between: x, cos and sin stay as they were, and nothing reads the
    // rotated q or k.
    bool fits = true;
    for (size_t t = std::min(*rq, *rk) + 1; t < a && fits; ++t)
      if (t != *rq && t != *rk)
        fits = !anyOverlap(access[t].writes, rotaryReads) &&
               !anyOverlap(access[t].reads, rotated);
    // After: no reader of the rotated bytes (the attention's other
    // operands included) until they are written whole again, nor an
    // entry output among them.
    for (const Region &bytes : rotated) {
      bool live = true;
      for (size_t t = a; t < n && fits && live; ++t) {
        for (size_t r = t == a ? 2 : 0; r < access[t].reads.size(); ++r)
          fits = fits && !overlaps(access[t].reads[r], bytes);
        for (const Region &w : access[t].writes)
          live = live && !covers(w, bytes);
      }
      for (uint32_t id : outputs)
        fits = fits && !(live && overlaps(region(id), bytes));
    }
    // The output: q's x exactly, or clear of everything the launch reads.
    const Region out = access[a].writes[0];
    const Region qx = access[*rq].reads[0];
    std::vector<Region> launchReads = {access[*rk].reads.begin(),
                                       access[*rk].reads.end()};
    launchReads.push_back(access[*rq].reads[1]);
    launchReads.push_back(access[*rq].reads[2]);
    launchReads.insert(launchReads.end(), access[a].reads.begin() + 2,
                       access[a].reads.end());
    fits = fits && (same(out, qx) || !overlaps(out, qx)) &&
           !anyOverlap({out}, launchReads);
    if (fits)
      fusions.push_back({a, *rq, *rk});
  }
  return fusions;
}

} // namespace weft::runtime::cuda
