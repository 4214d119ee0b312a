// The randomness of the SAMPLE step, shared by every backend: a
// counter-based hash of (seed, position, token id), so that a seed picks
// the same token on the CPU and the GPU, in any batch and at any tensor-
// parallel degree. Plain C++ that nvcc also compiles for the device.
#ifndef WEFT_RUNTIME_STEPS_SAMPLING_H
#define WEFT_RUNTIME_STEPS_SAMPLING_H

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define WEFT_HOST_DEVICE __host__ __device__
#else
#define WEFT_HOST_DEVICE
#endif

namespace weft::runtime::steps {

/// SplitMix64's finalizer: a bijection of 64-bit words that mixes well.
WEFT_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/// A uniform value in (0, 1) for token `id` of the row sampled at
/// `position` under `seed`: 24 random bits, never 0 or 1.
WEFT_HOST_DEVICE inline float sampleUniform(uint64_t seed, uint64_t position,
                                            uint64_t id) {
  uint64_t h = mix64(mix64(seed ^ mix64(position)) + id);
  return (float(h >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

/// The Gumbel noise added to z[id] before the argmax that samples a row:
/// argmax(z + g) is distributed as softmax(z).
WEFT_HOST_DEVICE inline float sampleGumbel(uint64_t seed, uint64_t position,
                                           uint64_t id) {
  return -logf(-logf(sampleUniform(seed, position, id)));
}

} // namespace weft::runtime::steps

#undef WEFT_HOST_DEVICE

#endif // WEFT_RUNTIME_STEPS_SAMPLING_H
