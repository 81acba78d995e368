// Shape of a virtual KV cache and the byte arithmetic that follows from it. Address layout:
//   base + range * rangeBytes + slot * slotBytes + RowOffset(position),  range = layer * 2 + (0 = K, 1 = V)
// Each (layer, K/V) range is [slot][position][row]: a token's row is tokenBytes bytes (its K or V in the
// cache's format). A page holds rowsPerPage whole rows (any bytes left at its end are unused), so no row
// straddles two pages and a page is exactly its tokens: the unit the prefix cache shares. A slot's stride
// is padded up to whole pages (paddedContext >= maxContext) so that no page straddles two slots.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve::vmem {

struct KVShape {
  uint32_t layers = 0;
  uint32_t kvHeads = 0;
  uint32_t headDim = 0;
  uint32_t tokenBytes = 0;  // one row: kvHeads x headDim values in the cache's format
  uint32_t rowGroup = 1;    // pages hold a multiple of this many rows (rows the format encodes together)
  // One KV head's slice of a K (V) row: head h is bytes [h x slice, (h + 1) x slice) of the row. 0 when the
  // format's rows do not split by head; then compaction moves whole rows only.
  uint32_t keyHeadBytes = 0;
  uint32_t valueHeadBytes = 0;
  uint32_t maxSlots = 0;
  uint32_t maxContext = 0;
};

class KVGeometry {
 public:
  // Validates the shape and page size; throws VmemError with what to change.
  KVGeometry(const KVShape& shape, size_t pageBytes);

  const KVShape& shape() const { return shape_; }
  size_t pageBytes() const { return pageBytes_; }
  uint32_t ranges() const { return shape_.layers * 2; }
  size_t tokenBytes() const { return shape_.tokenBytes; }
  uint32_t rowsPerPage() const { return rowsPerPage_; }
  uint32_t paddedContext() const { return paddedContext_; }
  size_t slotBytes() const { return slotBytes_; }
  size_t rangeBytes() const { return rangeBytes_; }
  size_t totalBytes() const { return rangeBytes_ * ranges(); }
  uint32_t pagesPerSlot() const { return static_cast<uint32_t>(slotBytes_ / pageBytes_); }

  // Pages one (slot, range) needs to hold `tokens` tokens.
  uint32_t PagesFor(uint32_t tokens) const { return (tokens + rowsPerPage_ - 1) / rowsPerPage_; }
  // Pages that `tokens` tokens fill completely (the shareable part of a prefix).
  uint32_t FullPages(uint32_t tokens) const { return tokens / rowsPerPage_; }
  // Byte offset of a position's row from its slot's start.
  size_t RowOffset(uint32_t position) const {
    return size_t{position / rowsPerPage_} * pageBytes_ + size_t{position % rowsPerPage_} * shape_.tokenBytes;
  }
  size_t SlotOffset(uint32_t range, uint32_t slot) const { return range * rangeBytes_ + slot * slotBytes_; }

 private:
  KVShape shape_;
  size_t pageBytes_;
  uint32_t rowsPerPage_;
  uint32_t paddedContext_;
  size_t slotBytes_;
  size_t rangeBytes_;
};

}  // namespace vserve::vmem
