// vAttention on the CPU: every (layer, K/V) gets one contiguous virtual range for maxSlots x maxContext
// tokens, and pool pages are mapped into a slot's part of it as the slot grows. This class holds the
// whole state (slots, their pages, the pool) and does every mmap; the binding only converts arguments.
//
// Invariants: a slot's pages in each range are a prefix [0, n) of its part of the range (pages[r][i] is
// the pool page mapped at page i); pages shared with another slot lie below both slots' token counts and
// are never written (compaction copies them first); idle slots (deferred reclamation) hold only private
// pages; a page held by a cache-owned group counts as shared while a slot maps it too.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vmem_address_space.h"
#include "vmem_errors.h"
#include "vmem_geometry.h"
#include "vmem_map_count.h"
#include "vmem_map_worker.h"
#include "vmem_pool.h"

namespace vserve::vmem {

struct VirtualKVOptions {
  KVShape shape;
  size_t pageBytes = 64 * 1024;
  uint64_t budgetBytes = 0;
  bool deferredReclaim = true;  // a freed slot keeps its pages for the next request
  bool trimOnFree = false;      // punch freed pages out of the memfd at once
};

enum class SlotState : uint8_t { kFree = 0, kActive = 1, kIdle = 2 };

// Outcome of a call that may need pool pages. ok = false means nothing changed and the caller waits or
// preempts: either the pool (with every reclaimable page) was too small, or mapping the pages would take
// the process past vm.max_map_count even after idle slots gave theirs up (mapCountLimited; `refusal`
// says what to change). Preempting other sequences frees mappings as well as pages.
struct GrowOutcome {
  bool ok = true;
  uint64_t pagesNeeded = 0;
  uint64_t pagesAvailable = 0;
  uint64_t pagesMapped = 0;
  bool mapCountLimited = false;
  std::string refusal;
};

struct VirtualKVCounters {
  uint64_t mapCalls = 0, mapNs = 0, unmapCalls = 0, unmapNs = 0, pagesMapped = 0, pagesUnmapped = 0;
  uint64_t pagesReclaimed = 0;  // taken from idle slots or surplus when the pool ran dry
};

class VirtualKV {
 public:
  explicit VirtualKV(const VirtualKVOptions& options);
  ~VirtualKV();

  const KVGeometry& geometry() const { return geometry_; }
  char* RangeBase(uint32_t range) const { return space_->base() + range * geometry_.rangeBytes(); }
  const PagePool& pool() const { return *pool_; }
  const VirtualKVCounters& counters() const { return counters_; }
  bool closed() const { return closed_; }

  void ReservePhysical(uint64_t bytes);
  // Returns the slot, or -1 when every slot is in use. Prefers an idle slot that still holds pages.
  int32_t AllocSlot();
  void FreeSlot(uint32_t slot);
  // lens[s] = tokens slot s holds after this step (<= 0: unchanged). Maps the missing pages now, or on the
  // background thread when async (joined by the next call or Wait()).
  GrowOutcome Step(const int32_t* lens, size_t count, bool async);
  void Wait();
  // dst (active, empty) gets src's first `tokens` tokens: full pages mapped shared, the partial page copied.
  GrowOutcome Share(uint32_t src, uint32_t dst, uint32_t tokens);
  // Keeps `kept` positions of slot: keep holds one list for all layers (keepLen = kept), one per layer
  // (kept x layers) or one per layer and KV head (kept x layers x kvHeads, [layer][head] order; needs head
  // slices). Row i (or head h's slice of it) gets row keep[i]'s; entries are distinct (keep[i] = i may
  // repeat a row copied forward earlier), below the slot's tokens, and keep[i] >= i. Shared pages written into are copied first; pages past the kept rows are
  // unmapped and go back to the pool in this call.
  GrowOutcome Compact(uint32_t slot, const int32_t* keep, size_t keepLen, uint32_t kept);
  uint64_t Trim();
  void Close();

  // Cache-owned page groups (vmem_cached_groups.cc): a group holds one block of a slot's tokens in every
  // range (blockPages() consecutive pages each), kept alive by its own reference after the slot is freed.
  // Tokens in one group: the smallest whole number of tokens that fills whole pages.
  uint32_t blockTokens() const;
  uint32_t blockPages() const;
  // A new group holding a reference on slot's block `block` (which must lie below the slot's tokens).
  uint32_t RetainGroup(uint32_t slot, uint32_t block);
  // Maps groups (in order) as the first blocks of `slot` (active, holding no tokens); the slot then holds
  // count x blockTokens() tokens. Refused like a step when the mapping limit is reached.
  GrowOutcome MapGroups(uint32_t slot, const uint32_t* groups, size_t count);
  // Drops the group's reference; returns the pool pages that became free.
  uint64_t ReleaseGroup(uint32_t group);
  uint32_t LiveGroups() const { return static_cast<uint32_t>(groups_.size() - freeGroups_.size()); }

  uint64_t PagesNeeded(uint32_t slot, uint32_t tokens) const;
  uint64_t ReclaimablePages() const;
  SlotState StateOf(uint32_t slot) const { return slots_[slot].state; }
  uint32_t TokensOf(uint32_t slot) const { return slots_[slot].tokens; }
  const std::vector<uint32_t>& PagesOf(uint32_t slot, uint32_t range) const { return slots_[slot].pages[range]; }
  uint64_t MappedPagesOf(uint32_t slot) const;
  void CheckSlot(uint32_t slot) const;
  void CheckOpen() const;

 private:
  struct Slot {
    SlotState state = SlotState::kFree;
    uint32_t tokens = 0;
    uint64_t idleSince = 0;
    std::vector<std::vector<uint32_t>> pages;  // [range] -> pool page at each page index
  };
  // Where a pending map job's pages were recorded, to undo them if the job fails.
  struct JobOwner {
    uint32_t slot, range, firstIndex;
  };
  struct Batch {
    std::vector<MapJob> jobs;
    std::vector<JobOwner> owners;
    std::vector<std::pair<uint32_t, uint32_t>> tokensBefore;  // (slot, tokens) to restore on failure
  };

  char* PageAddress(uint32_t slot, uint32_t range, uint32_t index) const;
  void RequireActive(uint32_t slot, const char* what) const;
  // Appends pool pages to each range of `slot` up to `pages` and queues their mappings.
  void Grow(uint32_t slot, uint32_t pages, Batch& batch);
  static void Queue(Batch& batch, const MapJob& job, const JobOwner& owner);
  // Books a batch's result; on failure undoes it and throws the mmap error - except ENOMEM (the mapping
  // limit) when `outcome` is given: that is recorded there as a refusal (returns false).
  bool FinishBatch(const Batch& batch, const MapBatchResult& result, GrowOutcome* outcome = nullptr);
  static void RefuseForMapCount(GrowOutcome& outcome, const VmemError& error);
  // Unmaps a batch's first `completed` jobs and gives back every page it took, newest first.
  void UndoBatch(const Batch& batch, size_t completed);
  // Fills `batch` with build(batch) and makes room under vm.max_map_count for its mappings. If they do
  // not fit, idle slots give up theirs and the batch is built again (their pages moved to the pool); if it
  // still does not fit, the batch is undone and the refusal recorded in `outcome` (returns false).
  bool BuildWithinMapCount(Batch& batch, GrowOutcome& outcome, const std::function<void(Batch&)>& build);
  // Unmaps every idle slot (deferred reclamation gives way); returns how many there were.
  uint32_t ReleaseIdleSlots();
  void JoinPending();
  // Unmaps every range of `slot` down to `keepPages` pages; returns the pool pages that became free.
  uint64_t ReleaseTail(uint32_t slot, uint32_t keepPages);
  uint64_t SurplusPages(uint32_t slot, uint32_t floorTokens) const;
  // Frees `deficit` pages from idle slots (oldest first), then from active slots' pages beyond floors[s].
  void Reclaim(uint64_t deficit, const std::vector<uint32_t>& floors);
  uint64_t Available(const std::vector<uint32_t>& floors) const;
  std::vector<uint32_t> TokenFloors() const;
  bool HoldsSharedPages(uint32_t slot) const;
  void CopyOnWrite(uint32_t slot, uint32_t range, uint32_t index);
  // Moves `heads` slices of sliceBytes (head h at h x sliceBytes, list h at lists + h x kept) to the front.
  void MoveRows(uint32_t slot, uint32_t range, const int32_t* lists, uint32_t heads, size_t sliceBytes, uint32_t kept);
  void AfterRelease();

  KVGeometry geometry_;
  VirtualKVOptions options_;
  std::unique_ptr<AddressSpace> space_;
  std::unique_ptr<PagePool> pool_;
  std::vector<Slot> slots_;
  MapWorker worker_;
  Batch pending_;
  VirtualKVCounters counters_;
  uint64_t clock_ = 0;
  bool closed_ = false;
  std::vector<std::vector<uint32_t>> groups_;  // group -> pool pages, range-major (empty when released)
  std::vector<uint32_t> freeGroups_;
};

}  // namespace vserve::vmem
