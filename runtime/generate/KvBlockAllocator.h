// The blocks of a paged KV cache: a free list, reservations made when a
// sequence is admitted, and per-sequence block tables that grow from them.
#ifndef WEFT_RUNTIME_GENERATE_KVBLOCKALLOCATOR_H
#define WEFT_RUNTIME_GENERATE_KVBLOCKALLOCATOR_H

#include <cstdint>
#include <vector>

namespace weft::runtime::generate {

/// A sequence's cache blocks, in position order: block i holds positions
/// [i * blockSize, (i + 1) * blockSize).
struct BlockTable {
  std::vector<int32_t> blocks;
  /// Blocks reserved for this sequence but not yet in `blocks`.
  uint64_t reserved = 0;
};

class KvBlockAllocator {
public:
  KvBlockAllocator(uint64_t blocks, int64_t blockSize);

  uint64_t totalBlocks() const { return total; }
  int64_t blockSize() const { return size; }
  /// Blocks neither in a table nor reserved.
  uint64_t availableBlocks() const { return freeList.size() - reservedCount; }
  /// Blocks that hold `tokens` tokens.
  uint64_t blocksFor(int64_t tokens) const;

  /// Reserves `count` blocks for `table` (a sequence's worst case, so that
  /// it never runs out once admitted); false, reserving nothing, if fewer
  /// are available.
  bool reserve(BlockTable &table, uint64_t count);
  /// Grows `table` to hold `tokens` tokens, from its reservation first and
  /// then from the free blocks; false, taking nothing, if they run out.
  bool grow(BlockTable &table, int64_t tokens);
  /// Returns the table's blocks and reservation.
  void release(BlockTable &table);

private:
  uint64_t total;
  int64_t size;
  /// Free blocks, the next one to hand out last.
  std::vector<int32_t> freeList;
  uint64_t reservedCount = 0;
};

} // namespace weft::runtime::generate

#endif // WEFT_RUNTIME_GENERATE_KVBLOCKALLOCATOR_H
