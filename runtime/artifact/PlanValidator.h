// Invariants of an artifact the runtime relies on beyond its schema: the
// layout and target, kernel files, arena size against the machine, and each
// step's reads and writes of the arena.
#ifndef WEFT_RUNTIME_ARTIFACT_PLANVALIDATOR_H
#define WEFT_RUNTIME_ARTIFACT_PLANVALIDATOR_H

#include "runtime/artifact/artifact.pb.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <string>

namespace weft::runtime {

/// The most arena one rank may ask for: `WEFT_MAX_ARENA_BYTES` where set (a
/// positive number of bytes, else an error), or the machine's memory.
Result<uint64_t> arenaLimitBytes();

/// The manifest's layout, target and hashes: tp, pp, dp and microbatches all
/// at least 1 (or all of tp, pp and dp unset, an artifact of one layout
/// degree), within bounds; `target` "cpu" or "sm_NN[a|f]"; source_sha256 and
/// the kernel files' hashes 64 hex digits.
Status checkManifestFields(const artifact::Manifest &manifest);

/// The kernel module's files (source, cubin, PTX) in `dir`: inside it,
/// regular files, matching their SHA-256, whatever the backend.
Status checkKernelFiles(const std::string &dir,
                        const artifact::Manifest &manifest);

/// arena_bytes within arenaLimitBytes(), checked before anything allocates.
Status checkArenaLimit(const artifact::Plan &plan);

/// The bytes of one KV cache block on the rank that holds the most (0 where
/// the artifact does not say).
uint64_t largestKvBlockBytes(const artifact::Generation &generation);

/// A host-memory KV cache of `blocks` blocks (of largestKvBlockBytes) within
/// arenaLimitBytes(); `flags` names what sized it.
Status checkKvCacheLimit(uint64_t blocks,
                         const artifact::Generation &generation,
                         const std::string &flags);

/// Walks the steps in order: every arena byte a step reads was written by an
/// earlier step or is a graph input (state buffers are outside the arena
/// and always hold data); GEMM, ATTENTION, PAGED_ATTENTION and SAMPLE
/// outputs overlap none of their inputs (they read inputs while writing the
/// output). Buffer ids must already be checked (validatePlan).
Status checkStepDataflow(const artifact::Plan &plan);

} // namespace weft::runtime

#endif // WEFT_RUNTIME_ARTIFACT_PLANVALIDATOR_H
