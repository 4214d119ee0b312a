// `weft doctor` (and weft-doctor): checks a host before a long job: its
// GPUs, driver, CUDA and NCCL versions, peer access and NVLink, InfiniBand
// ports, and that it matches the topology the job was planned for.
#ifndef WEFT_TOOLS_COMMON_DOCTORMAIN_H
#define WEFT_TOOLS_COMMON_DOCTORMAIN_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <functional>
#include <string>

namespace weft::runtime {

/// What a topology says one host must have.
struct DoctorTopology {
  std::string name;
  std::string gpuType; // "H100-SXM-80GB"
  double gpuMemoryGib = 0;
  int64_t gpusPerNode = 1, nodes = 1;
  bool nvlink = false; // GPUs of a node meet over NVLink or NVSwitch
  /// Between nodes: "none", "infiniband" or "ethernet" (RoCE), with the
  /// NICs of one node and each NIC's rate.
  std::string interNode = "none";
  int64_t nicsPerNode = 0;
  double gbitPerNic = 0;
};

/// Reads --topology's NAME|FILE; an error's exit status is 2 for a name
/// that is neither a preset nor a file, else 1. Empty where this build
/// cannot read topologies (weft-doctor).
using DoctorTopologyLoader =
    std::function<Result<DoctorTopology>(const std::string &, int &status)>;

int doctorMain(int argc, char **argv, const DoctorTopologyLoader &loader);

} // namespace weft::runtime

#endif // WEFT_TOOLS_COMMON_DOCTORMAIN_H
