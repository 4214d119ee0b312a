// InfiniBand (and RoCE) ports as the kernel shows them under
// /sys/class/infiniband: state, rate and the port counters that weft doctor
// checks and the per-rank metrics export.
#ifndef WEFT_RUNTIME_MONITOR_INFINIBAND_H
#define WEFT_RUNTIME_MONITOR_INFINIBAND_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace weft::runtime::monitor {

struct IbPort {
  std::string device; // "mlx5_0"
  uint32_t port = 1;
  std::string state;     // "ACTIVE" (from "4: ACTIVE")
  std::string physState; // "LinkUp" (from "5: LinkUp")
  std::string rate;      // "400 Gb/sec (4X NDR)"
  double gbitPerS = 0;   // 400
  std::string linkLayer; // "InfiniBand" or "Ethernet" (RoCE)
  /// counters/: port_xmit_data, port_rcv_data (in 4-byte words, as the
  /// kernel gives them) and the error counters, by file name.
  std::map<std::string, uint64_t> counters;

  bool active() const { return state == "ACTIVE" && physState == "LinkUp"; }
};

/// The root of sysfs: $WEFT_SYSFS_ROOT (a copy of the tree, for tests),
/// else "/sys".
std::string sysfsRoot();

/// Every port of every device under ROOT/class/infiniband, in name order;
/// none where the directory is absent. Files that cannot be read leave
/// their fields empty.
std::vector<IbPort> readIbPorts(const std::string &root = sysfsRoot());

/// The error counters exported (file names under counters/).
const std::vector<std::string> &ibErrorCounters();

} // namespace weft::runtime::monitor

#endif // WEFT_RUNTIME_MONITOR_INFINIBAND_H
