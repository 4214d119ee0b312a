// Byte vectors whose storage is 64-byte aligned (arenas, weight copies).
#ifndef WEFT_RUNTIME_SUPPORT_ALIGNEDBUFFER_H
#define WEFT_RUNTIME_SUPPORT_ALIGNEDBUFFER_H

#include <cstddef>
#include <new>
#include <vector>

namespace weft::runtime {

constexpr size_t kBufferAlignment = 64;

/// A std::allocator that aligns every allocation to kBufferAlignment.
template <typename T> struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U> AlignedAllocator(const AlignedAllocator<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(
        ::operator new(n * sizeof(T), std::align_val_t(kBufferAlignment)));
  }
  void deallocate(T *p, size_t) {
    ::operator delete(p, std::align_val_t(kBufferAlignment));
  }
  template <typename U> bool operator==(const AlignedAllocator<U> &) const {
    return true;
  }
};

/// Zero-initialized, 64-byte aligned bytes.
using AlignedBuffer = std::vector<std::byte, AlignedAllocator<std::byte>>;

} // namespace weft::runtime

#endif // WEFT_RUNTIME_SUPPORT_ALIGNEDBUFFER_H
