// Cache-owned page groups: how the prefix cache keeps a block of KV alive after the sequence that computed
// it is gone, and maps it into the next sequence that starts with the same tokens. The pages are shared,
// not copied: the new slot's range points at the same pool pages, so its KV stays contiguous.
#include <string>

#include "vmem_errors.h"
#include "vmem_virtual_kv.h"

namespace vserve::vmem {

// A block is one page of every range: pages hold whole rows (vmem_geometry.h).
uint32_t VirtualKV::blockPages() const { return 1; }

uint32_t VirtualKV::blockTokens() const { return geometry_.rowsPerPage(); }

uint32_t VirtualKV::RetainGroup(uint32_t slot, uint32_t block) {
  RequireActive(slot, "retainGroup");
  JoinPending();
  const uint64_t end = uint64_t{block + 1} * blockTokens();
  if (end > slots_[slot].tokens) {
    throw VmemError(code::kInvalidArgument, "retainGroup: block " + std::to_string(block) + " of slot " +
                                                std::to_string(slot) + " ends at token " + std::to_string(end) +
                                                ", past the " + std::to_string(slots_[slot].tokens) + " it holds");
  }
  const uint32_t per = blockPages();
  std::vector<uint32_t> pages;
  pages.reserve(size_t{geometry_.ranges()} * per);
  for (uint32_t r = 0; r < geometry_.ranges(); r++) {
    for (uint32_t i = block * per; i < (block + 1) * per; i++) {
      uint32_t page = slots_[slot].pages[r].at(i);
      pool_->Retain(page);
      pages.push_back(page);
    }
  }
  uint32_t group;
  if (!freeGroups_.empty()) {
    group = freeGroups_.back();
    freeGroups_.pop_back();
    groups_[group] = std::move(pages);
  } else {
    group = static_cast<uint32_t>(groups_.size());
    groups_.push_back(std::move(pages));
  }
  return group;
}

uint64_t VirtualKV::ReleaseGroup(uint32_t group) {
  CheckOpen();
  if (group >= groups_.size() || groups_[group].empty()) {
    throw VmemError(code::kInvalidArgument, "releaseGroup: group " + std::to_string(group) + " is not held");
  }
  JoinPending();
  uint64_t freed = 0;
  for (uint32_t page : groups_[group]) freed += pool_->Release(page) ? 1 : 0;
  groups_[group].clear();
  freeGroups_.push_back(group);
  AfterRelease();
  return freed;
}

GrowOutcome VirtualKV::MapGroups(uint32_t slot, const uint32_t* groups, size_t count) {
  RequireActive(slot, "mapGroups");
  if (slots_[slot].tokens != 0) {
    throw VmemError(code::kInvalidArgument, "mapGroups: slot " + std::to_string(slot) + " already holds tokens");
  }
  const uint32_t per = blockPages();
  if (uint64_t{count} * blockTokens() > geometry_.shape().maxContext) {
    throw VmemError(code::kContextOverflow, "mapGroups: " + std::to_string(count) + " blocks of " +
                                                std::to_string(blockTokens()) + " tokens pass maxContext " +
                                                std::to_string(geometry_.shape().maxContext));
  }
  for (size_t i = 0; i < count; i++) {
    if (groups[i] >= groups_.size() || groups_[groups[i]].empty()) {
      throw VmemError(code::kInvalidArgument, "mapGroups: group " + std::to_string(groups[i]) + " is not held");
    }
  }
  JoinPending();
  // The slot's own pages (deferred reclamation) would sit where the groups go.
  ReleaseTail(slot, 0);
  GrowOutcome outcome;
  outcome.pagesAvailable = Available(TokenFloors());
  outcome.pagesMapped = uint64_t{count} * per * geometry_.ranges();
  Batch batch;
  const bool fits = BuildWithinMapCount(batch, outcome, [&](Batch& b) {
    for (uint32_t r = 0; r < geometry_.ranges(); r++) {
      std::vector<uint32_t>& mapped = slots_[slot].pages[r];
      for (size_t g = 0; g < count; g++) {
        for (uint32_t j = 0; j < per; j++) {
          const uint32_t page = groups_[groups[g]][size_t{r} * per + j];
          const uint32_t index = static_cast<uint32_t>(mapped.size());
          pool_->Retain(page);
          mapped.push_back(page);
          Queue(b, MapJob{PageAddress(slot, r, index), geometry_.pageBytes(), pool_->fd(), pool_->OffsetOf(page)},
                JobOwner{slot, r, index});
        }
      }
    }
  });
  if (!fits || !FinishBatch(batch, RunMapBatch(batch.jobs), &outcome)) return outcome;
  slots_[slot].tokens = static_cast<uint32_t>(count * blockTokens());
  return outcome;
}

}  // namespace vserve::vmem
