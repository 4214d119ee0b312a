// Helpers shared by the transports.
#include "runtime/comm/Transport.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace weft::runtime::comm {

std::string groupString(const Group &group) {
  std::string s = "[";
  for (size_t i = 0; i < group.size(); ++i)
    s += (i ? ", " : "") + std::to_string(group[i]);
  return s + "]";
}

std::string secondsString(std::chrono::duration<double> d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g s", d.count());
  return buf;
}

std::vector<Group> planGroups(const artifact::Plan &plan, uint32_t worldSize) {
  std::vector<Group> groups;
  for (const artifact::Step &step : plan.steps()) {
    if (step.kind() != artifact::Step::COLLECTIVE)
      continue;
    if (!step.has_collective())
      continue;
    const auto &members = step.collective().group();
    Group g(members.begin(), members.end());
    if (std::find(groups.begin(), groups.end(), g) == groups.end())
      groups.push_back(std::move(g));
  }
  Group world(worldSize);
  for (uint32_t r = 0; r < worldSize; ++r)
    world[r] = r;
  if (std::find(groups.begin(), groups.end(), world) == groups.end())
    groups.push_back(std::move(world));
  return groups;
}

Status deliverMessage(std::span<const std::byte> message, std::byte *data,
                      uint64_t bytes, const std::string &where) {
  if (message.size() != bytes)
    return errorStatus(where + ": the message holds " +
                       std::to_string(message.size()) + " bytes, expected " +
                       std::to_string(bytes));
  if (bytes)
    std::memcpy(data, message.data(), bytes);
  return okStatus();
}

Group SliceTransport::outer(const Group &group) const {
  Group g(group);
  for (uint32_t &r : g)
    r += first;
  return g;
}

Status SliceTransport::prepare(std::span<const Group> groups) {
  std::vector<Group> outerGroups;
  for (const Group &g : groups)
    outerGroups.push_back(outer(g));
  return inner.prepare(outerGroups);
}

Status SliceTransport::allReduceSum(const Group &group, DType dtype,
                                    const std::byte *in, std::byte *out,
                                    int64_t count) {
  return inner.allReduceSum(outer(group), dtype, in, out, count);
}

Status SliceTransport::allGather(const Group &group, const std::byte *in,
                                 uint64_t bytes, std::byte *out) {
  return inner.allGather(outer(group), in, bytes, out);
}

Status SliceTransport::send(uint32_t peer, int64_t tag, const std::byte *data,
                            uint64_t bytes) {
  return inner.send(first + peer, tag, data, bytes);
}

Status SliceTransport::recv(uint32_t peer, int64_t tag, std::byte *data,
                            uint64_t bytes) {
  return inner.recv(first + peer, tag, data, bytes);
}

} // namespace weft::runtime::comm
