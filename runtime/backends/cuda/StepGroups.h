// Steps of an entry point the CUDA backend launches as one kernel: the
// projections of a decode step that read the same activations (q, k and v)
// and a gated MLP's gate and up projections with the silu(gate) * up after
// them, each with the RMS norm before it. A decode step of a small model is
// bound by its launches rather than its bytes; these groups take four
// launches of every attention block and four of every MLP down to one
// each.
//
// The ROTARY steps of q and k are likewise applied by the paged attention
// launch after them (findRotaryFusions).
//
// The plan is not changed: a group runs where its last step stands, which
// is sound only where no step it moves past touches what the moved steps
// read or write. That is decided on the bytes of the arena each step reads
// and writes, so that buffers sharing memory (the planner reuses it) are
// seen as the same.
#ifndef WEFT_RUNTIME_BACKENDS_CUDA_STEPGROUPS_H
#define WEFT_RUNTIME_BACKENDS_CUDA_STEPGROUPS_H

#include "runtime/artifact/artifact.pb.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace weft::runtime::cuda {

/// Bytes of device memory a buffer occupies.
struct Region {
  const void *data = nullptr;
  uint64_t bytes = 0;
};

/// Steps launched as one, in place of the step at index `at`: `members`
/// are GEMM steps (in segment order); with `swiglu`, they are the gate and
/// up projections and `at` the elementwise silu(gate) * up step they
/// replace with it.
struct StepGroup {
  std::vector<size_t> members;
  bool swiglu = false;
  size_t at = 0;
  /// With swiglu, where the planner put the product over the activations
  /// (they are dead after the up projection, but one kernel both reads
  /// them and writes it): the member whose output bytes receive the
  /// product instead (the projections' own outputs are not written), to
  /// be read from there by the product's readers, none of which runs
  /// after step `until`. -1 where the product's own bytes do.
  int productInto = -1;
  size_t until = 0;
  /// An RMS_NORM step whose output only the members read: the launch
  /// normalizes its input itself, and the step is not run.
  std::optional<size_t> norm;
};

/// The two inputs (gate, up) of an ELEMENTWISE step whose program is
/// exactly silu(gate) * up in one dtype, as step input indices.
std::optional<std::pair<int, int>> swigluInputs(const artifact::Step &step);

/// The groups of `steps` (an entry point's, in order). `region` maps a
/// buffer id to its bytes; `groupable(i, j)` says whether GEMM steps i and
/// j may share one launch (the same activations, kernel constraints);
/// `normable(r, i)` whether RMS_NORM step r can be computed by the launch
/// of GEMM step i's group; `outputs` are the entry's output buffer ids,
/// which must stay written. `maxMembers` bounds a group of projections.
std::vector<StepGroup>
findStepGroups(std::span<const artifact::Step *const> steps,
               const std::function<Region(uint32_t)> &region,
               const std::function<bool(size_t, size_t)> &groupable,
               const std::function<bool(size_t, size_t)> &normable,
               std::span<const uint32_t> outputs, size_t maxMembers);

/// A PAGED_ATTENTION step whose q and k come straight from ROTARY steps,
/// which its launch applies itself (the decode kernel): the ROTARY steps
/// are not run, and the attention reads their x where it read their
/// outputs.
struct RotaryFusion {
  size_t attention = 0, rotaryQ = 0, rotaryK = 0;
};

/// The fusions of `steps` that every read still sees as the plan has it:
/// nothing but the attention reads the rotated q and k, nothing between
/// overwrites the ROTARY steps' x, cos and sin, and the attention's output
/// is clear of every byte the launch reads, except that it may be q's x
/// exactly (each head's output replaces that head's q, read first by the
/// same blocks). `outputs` are the entry's output buffer ids.
std::vector<RotaryFusion>
findRotaryFusions(std::span<const artifact::Step *const> steps,
                  const std::function<Region(uint32_t)> &region,
                  std::span<const uint32_t> outputs);

} // namespace weft::runtime::cuda

#endif // WEFT_RUNTIME_BACKENDS_CUDA_STEPGROUPS_H
