// Bounds on what a command line or an artifact may ask of the machine.
#ifndef WEFT_RUNTIME_SUPPORT_LIMITS_H
#define WEFT_RUNTIME_SUPPORT_LIMITS_H

#include <cstdint>

namespace weft::runtime {

/// `--threads`: worker threads per rank. Far above any core count weft runs
/// on, and low enough that a typo cannot exhaust the process's threads.
constexpr unsigned kMaxThreadsPerRank = 1024;

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_LIMITS_H
