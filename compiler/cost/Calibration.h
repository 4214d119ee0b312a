// The measured constants of the cost model for one GPU type, read from a
// versioned YAML file (compiler/cost/calibration/*.yaml, or `weft calibrate`
// output); docs/planner.md describes the format.
#ifndef WEFT_COMPILER_COST_CALIBRATION_H
#define WEFT_COMPILER_COST_CALIBRATION_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::weft::cost {

/// An achieved GEMM rate: M x N x K (the product is M x N) in TFLOP/s.
struct GemmPoint {
  int64_t m = 0, n = 0, k = 0;
  double tflops = 0;
};

/// A measured all-reduce: `bytes` per rank over `ranks` GPUs took `us`
/// microseconds (replayed in a CUDA graph, less the graph node the cost
/// model adds to every kernel).
struct AllReducePoint {
  int64_t ranks = 0;
  double bytes = 0, us = 0;
  bool operator<(const AllReducePoint &o) const {
    return ranks != o.ranks ? ranks < o.ranks : bytes < o.bytes;
  }
};

/// Collective constants of one link tier. The bus bandwidth of an algorithm
/// is its efficiency times the topology's per-GPU link bandwidth, so one
/// calibration serves topologies with other link speeds.
struct LinkCalibration {
  double baseUs = 0; // fixed cost of one collective call
  double ringEfficiency = 0, treeEfficiency = 0;
  /// Optional all-reduce times measured per GPU count; for a GPU count they
  /// hold, they replace the alpha-beta line. Sorted by (ranks, bytes), no
  /// two alike, ranks at least 2.
  std::vector<AllReducePoint> allReduce;
};

struct Calibration {
  int64_t version = 1;
  std::string gpu; // matched against the start of the topology's gpu.type
  std::string measuredDate, measuredSource;
  std::vector<GemmPoint> gemm; // at least one
  /// The GEMMs of a whole model's run (back to back, weights from HBM, at
  /// sustained clocks) as a fraction of the grid's rates (short bursts of
  /// one shape). Optional, default 1.
  double gemmSustainedEfficiency = 1;
  double hbmTbPerS = 0; // achieved copy bandwidth, read + write
  /// The runtime's memory-bound kernels (norms, rotary, elementwise,
  /// movement): their bytes' rate / hbmTbPerS. Optional, default 1.
  double memoryKernelEfficiency = 1;
  double attentionEfficiency = 0; // fused attention rate / best GEMM rate
  double launchUs = 0, graphNodeUs = 0;
  LinkCalibration nvlink, fabric;
  double contextMib = 0, workspaceMib = 0, ncclMib = 0, cudaGraphMib = 0;
};

/// A calibration embedded from compiler/cost/calibration/NAME.yaml.
struct CalibrationPreset {
  llvm::StringRef name;
  llvm::StringRef path;
  llvm::StringRef text;
};

/// Every embedded calibration, sorted by name (generated at build time).
llvm::ArrayRef<CalibrationPreset> calibrationPresets();

/// Parses and validates a calibration file's text; errors read
/// `FILE:LINE: FIELD: what is wrong`.
llvm::Expected<Calibration> parseCalibration(llvm::StringRef text,
                                             llvm::StringRef fileName);

/// Reads and parses a calibration file.
llvm::Expected<Calibration> loadCalibration(llvm::StringRef path);

/// The embedded calibration for a topology's GPU type: the preset whose
/// `gpu` starts the type (case-insensitively: H100 for H100-SXM-80GB).
llvm::Expected<Calibration> calibrationForGpu(llvm::StringRef gpuType);

} // namespace mlir::weft::cost

#endif // WEFT_COMPILER_COST_CALIBRATION_H
