// The physical side of the virtual KV cache: one memfd cut into equal pages. Pages are refcounted so one
// page can be mapped into several slots (prefix sharing); a page returns to the free set when its last
// user lets go. Free pages may still hold memory until Trim() punches holes in the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace vserve::vmem {

inline constexpr uint32_t kNoPage = UINT32_MAX;

class PagePool {
 public:
  explicit PagePool(size_t pageBytes);
  ~PagePool();
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;

  int fd() const { return fd_; }
  size_t pageBytes() const { return pageBytes_; }
  uint32_t pageCount() const { return static_cast<uint32_t>(refs_.size()); }
  uint32_t freeCount() const { return freeCount_; }
  uint64_t OffsetOf(uint32_t page) const { return uint64_t{page} * pageBytes_; }

  // Grows or shrinks the pool to `pages`. Shrinking requires every page at or above `pages` to be free.
  void Resize(uint32_t pages);
  // Takes a free page (refcount 1), preferring page `after + 1` so that consecutive pages of a slot sit at
  // consecutive file offsets and their mappings merge into one VMA. Returns kNoPage when none is free.
  uint32_t Take(uint32_t after);
  void Retain(uint32_t page);
  // Drops one reference; returns true when the page became free.
  bool Release(uint32_t page);
  uint32_t RefCount(uint32_t page) const { return refs_[page]; }
  bool IsFree(uint32_t page) const { return (freeBits_[page / 64] >> (page % 64)) & 1; }
  // Returns the memory of free pages to the OS (fallocate PUNCH_HOLE); returns the bytes punched.
  uint64_t Trim();
  // Bytes of the memfd that hold memory now (st_blocks), i.e. the pool's real physical footprint.
  uint64_t AllocatedBytes() const;

 private:
  void SetFree(uint32_t page, bool free);
  // Where a new extent should start: inside the largest free run, leaving room for the extent before it.
  uint32_t PickExtentStart() const;
  void PunchRun(uint32_t first, uint32_t count);
  // The free pages as maximal runs, indexed by start and by length (largest run in O(log n)).
  void AddRun(uint32_t start, uint32_t length);
  void RemoveRun(uint32_t start);
  void MarkUsed(uint32_t page);
  void MarkFree(uint32_t page);

  int fd_ = -1;
  size_t pageBytes_;
  std::vector<uint64_t> freeBits_;  // bit set = free
  std::vector<uint32_t> refs_;
  std::vector<uint8_t> maybeCommitted_;  // page was handed out since it was last punched
  uint32_t freeCount_ = 0;
  std::map<uint32_t, uint32_t> runs_;                   // start -> length
  std::set<std::pair<uint32_t, uint32_t>> runsByLength_;  // (length, start)
};

}  // namespace vserve::vmem
