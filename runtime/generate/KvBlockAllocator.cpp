// The blocks of a paged KV cache, handed out to sequences and taken back.
#include "runtime/generate/KvBlockAllocator.h"

#include <algorithm>
#include <cassert>

namespace weft::runtime::generate {

KvBlockAllocator::KvBlockAllocator(uint64_t blocks, int64_t blockSize)
    : total(blocks), size(std::max<int64_t>(1, blockSize)) {
  // Block 0 first: small tables in tests read naturally.
  freeList.reserve(blocks);
  for (uint64_t b = blocks; b > 0; --b)
    freeList.push_back(static_cast<int32_t>(b - 1));
}

uint64_t KvBlockAllocator::blocksFor(int64_t tokens) const {
  if (tokens <= 0)
    return 0;
  return static_cast<uint64_t>((tokens + size - 1) / size);
}

bool KvBlockAllocator::reserve(BlockTable &table, uint64_t count) {
  if (count > availableBlocks())
    return false;
  table.reserved += count;
  reservedCount += count;
  return true;
}

bool KvBlockAllocator::grow(BlockTable &table, int64_t tokens) {
  uint64_t need = blocksFor(tokens);
  if (need <= table.blocks.size())
    return true;
  uint64_t more = need - table.blocks.size();
  uint64_t fromReserve = std::min(more, table.reserved);
  if (more - fromReserve > availableBlocks())
    return false;
  table.reserved -= fromReserve;
  reservedCount -= fromReserve;
  for (uint64_t i = 0; i < more; ++i) {
    assert(!freeList.empty() && "reserved blocks must be free");
    table.blocks.push_back(freeList.back());
    freeList.pop_back();
  }
  return true;
}

void KvBlockAllocator::release(BlockTable &table) {
  // Back in reverse, so that the next sequence gets the same blocks in the
  // same order.
  for (auto it = table.blocks.rbegin(); it != table.blocks.rend(); ++it)
    freeList.push_back(*it);
  table.blocks.clear();
  reservedCount -= table.reserved;
  table.reserved = 0;
}

} // namespace weft::runtime::generate
