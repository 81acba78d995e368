#include "vmem_virtual_kv.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "vmem_errors.h"

namespace vserve::vmem {

namespace {
constexpr uint64_t kMaxPoolPages = uint64_t{1} << 24;

std::string SlotName(uint32_t slot) { return "slot " + std::to_string(slot); }
}  // namespace

VirtualKV::VirtualKV(const VirtualKVOptions& options)
    : geometry_(options.shape, options.pageBytes), options_(options) {
  space_ = std::make_unique<AddressSpace>(geometry_.totalBytes());
  pool_ = std::make_unique<PagePool>(options.pageBytes);
  slots_.resize(options.shape.maxSlots);
  for (Slot& slot : slots_) slot.pages.resize(geometry_.ranges());
  ReservePhysical(options.budgetBytes);
}

VirtualKV::~VirtualKV() {
  if (worker_.pending()) worker_.Join();
}

void VirtualKV::CheckOpen() const {
  if (closed_) throw VmemError(code::kClosed, "the KV cache manager is closed");
}

void VirtualKV::CheckSlot(uint32_t slot) const {
  CheckOpen();
  if (slot >= slots_.size()) {
    throw VmemError(code::kUnknownSlot,
                    "unknown " + SlotName(slot) + ": slots are 0.." + std::to_string(slots_.size() - 1));
  }
}

void VirtualKV::RequireActive(uint32_t slot, const char* what) const {
  CheckSlot(slot);
  if (slots_[slot].state != SlotState::kActive) {
    throw VmemError(code::kUnknownSlot, std::string(what) + ": " + SlotName(slot) + " is not allocated");
  }
}

char* VirtualKV::PageAddress(uint32_t slot, uint32_t range, uint32_t index) const {
  return space_->base() + geometry_.SlotOffset(range, slot) + size_t{index} * geometry_.pageBytes();
}

void VirtualKV::ReservePhysical(uint64_t bytes) {
  CheckOpen();
  JoinPending();
  uint64_t pages = bytes / geometry_.pageBytes();
  if (pages > kMaxPoolPages) {
    throw VmemError(code::kInvalidArgument, "KV budget of " + std::to_string(pages) +
                                                " pages is too many; use a bigger pageSize");
  }
  // Idle slots give up pages that would fall off the end of a shrinking pool.
  for (uint32_t s = 0; s < slots_.size(); s++) {
    if (slots_[s].state != SlotState::kIdle) continue;
    for (const auto& range : slots_[s].pages) {
      if (std::any_of(range.begin(), range.end(), [&](uint32_t p) { return p >= pages; })) {
        ReleaseTail(s, 0);
        slots_[s].state = SlotState::kFree;
        break;
      }
    }
  }
  pool_->Resize(static_cast<uint32_t>(pages));
}

int32_t VirtualKV::AllocSlot() {
  CheckOpen();
  int32_t best = -1;
  uint64_t bestPages = 0;
  for (uint32_t s = 0; s < slots_.size(); s++) {
    if (slots_[s].state != SlotState::kIdle) continue;
    uint64_t pages = MappedPagesOf(s);
    if (best < 0 || pages > bestPages || (pages == bestPages && slots_[s].idleSince > slots_[best].idleSince)) {
      best = static_cast<int32_t>(s);
      bestPages = pages;
    }
  }
  for (uint32_t s = 0; best < 0 && s < slots_.size(); s++) {
    if (slots_[s].state == SlotState::kFree) best = static_cast<int32_t>(s);
  }
  if (best >= 0) {
    slots_[best].state = SlotState::kActive;
    slots_[best].tokens = 0;
  }
  return best;
}

bool VirtualKV::HoldsSharedPages(uint32_t slot) const {
  for (const auto& range : slots_[slot].pages) {
    for (uint32_t p : range) {
      if (pool_->RefCount(p) > 1) return true;
    }
  }
  return false;
}

void VirtualKV::FreeSlot(uint32_t slot) {
  CheckSlot(slot);
  if (slots_[slot].state != SlotState::kActive) {
    throw VmemError(code::kDoubleFree,
                    "freeSlot: " + SlotName(slot) + " is not allocated (double free, or never allocated)");
  }
  JoinPending();
  Slot& s = slots_[slot];
  // A slot holding shared pages would write into them when reused, so it gives everything back.
  if (options_.deferredReclaim && !HoldsSharedPages(slot)) {
    s.state = SlotState::kIdle;
    s.idleSince = ++clock_;
  } else {
    ReleaseTail(slot, 0);
    s.state = SlotState::kFree;
  }
  s.tokens = 0;
  AfterRelease();
}

void VirtualKV::AfterRelease() {
  if (options_.trimOnFree) pool_->Trim();
}

uint64_t VirtualKV::MappedPagesOf(uint32_t slot) const {
  uint64_t n = 0;
  for (const auto& range : slots_[slot].pages) n += range.size();
  return n;
}

uint64_t VirtualKV::PagesNeeded(uint32_t slot, uint32_t tokens) const {
  uint32_t want = geometry_.PagesFor(tokens);
  uint64_t need = 0;
  for (const auto& range : slots_[slot].pages) need += want > range.size() ? want - range.size() : 0;
  return need;
}

uint64_t VirtualKV::SurplusPages(uint32_t slot, uint32_t floorTokens) const {
  const Slot& s = slots_[slot];
  if (s.state == SlotState::kFree) return 0;
  uint32_t keep = s.state == SlotState::kIdle ? 0 : geometry_.PagesFor(floorTokens);
  uint64_t surplus = 0;
  for (const auto& range : s.pages) surplus += range.size() > keep ? range.size() - keep : 0;
  return surplus;
}

std::vector<uint32_t> VirtualKV::TokenFloors() const {
  std::vector<uint32_t> floors(slots_.size());
  for (uint32_t s = 0; s < slots_.size(); s++) floors[s] = slots_[s].tokens;
  return floors;
}

uint64_t VirtualKV::Available(const std::vector<uint32_t>& floors) const {
  uint64_t available = pool_->freeCount();
  for (uint32_t s = 0; s < slots_.size(); s++) available += SurplusPages(s, floors[s]);
  return available;
}

uint64_t VirtualKV::ReclaimablePages() const { return Available(TokenFloors()) - pool_->freeCount(); }

void VirtualKV::Reclaim(uint64_t deficit, const std::vector<uint32_t>& floors) {
  // Candidates: idle slots from the longest idle, then active slots with pages beyond what they need.
  std::vector<uint32_t> order;
  for (uint32_t s = 0; s < slots_.size(); s++) {
    if (slots_[s].state == SlotState::kIdle) order.push_back(s);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return slots_[a].idleSince < slots_[b].idleSince; });
  for (uint32_t s = 0; s < slots_.size(); s++) {
    if (slots_[s].state == SlotState::kActive) order.push_back(s);
  }
  const uint32_t ranges = geometry_.ranges();
  for (uint32_t s : order) {
    while (deficit > 0 && SurplusPages(s, floors[s]) > 0) {
      uint32_t longest = 0;
      for (const auto& range : slots_[s].pages) longest = std::max<uint32_t>(longest, range.size());
      uint32_t floorPages = slots_[s].state == SlotState::kIdle ? 0 : geometry_.PagesFor(floors[s]);
      uint64_t cut = (deficit + ranges - 1) / ranges;
      uint32_t keep = static_cast<uint32_t>(std::max<uint64_t>(floorPages, longest > cut ? longest - cut : 0));
      uint64_t freed = ReleaseTail(s, keep);
      if (freed == 0) break;  // cannot happen for private pages; guards against looping forever
      counters_.pagesReclaimed += freed;
      deficit -= std::min(deficit, freed);
    }
    if (slots_[s].state == SlotState::kIdle && MappedPagesOf(s) == 0) slots_[s].state = SlotState::kFree;
    if (deficit == 0) return;
  }
}

uint64_t VirtualKV::ReleaseTail(uint32_t slot, uint32_t keepPages) {
  uint64_t freed = 0;
  for (uint32_t r = 0; r < geometry_.ranges(); r++) {
    std::vector<uint32_t>& pages = slots_[slot].pages[r];
    if (pages.size() <= keepPages) continue;
    size_t count = pages.size() - keepPages;
    MapBatchResult result = RunMapBatch({MapJob{PageAddress(slot, r, keepPages), count * geometry_.pageBytes(), -1, 0}});
    counters_.unmapCalls += result.mapCalls;
    counters_.unmapNs += result.mapNs;
    if (result.error != 0) ThrowMapError("unmapping KV pages (mmap PROT_NONE)", result.error, geometry_.pageBytes());
    counters_.pagesUnmapped += count;
    for (size_t i = keepPages; i < pages.size(); i++) freed += pool_->Release(pages[i]) ? 1 : 0;
    pages.resize(keepPages);
  }
  return freed;
}

void VirtualKV::Queue(Batch& batch, const MapJob& job, const JobOwner& owner) {
  // A page adjacent in address and file offset to the previous job extends it: one mmap, one VMA.
  if (!batch.jobs.empty()) {
    MapJob& last = batch.jobs.back();
    const JobOwner& lastOwner = batch.owners.back();
    if (last.fd == job.fd && last.addr + last.bytes == job.addr && last.fileOffset + last.bytes == job.fileOffset &&
        lastOwner.slot == owner.slot && lastOwner.range == owner.range) {
      last.bytes += job.bytes;
      return;
    }
  }
  batch.jobs.push_back(job);
  batch.owners.push_back(owner);
}

void VirtualKV::Grow(uint32_t slot, uint32_t pages, Batch& batch) {
  for (uint32_t r = 0; r < geometry_.ranges(); r++) {
    std::vector<uint32_t>& mapped = slots_[slot].pages[r];
    while (mapped.size() < pages) {
      uint32_t index = static_cast<uint32_t>(mapped.size());
      uint32_t page = pool_->Take(mapped.empty() ? kNoPage : mapped.back());
      mapped.push_back(page);
      Queue(batch, MapJob{PageAddress(slot, r, index), geometry_.pageBytes(), pool_->fd(), pool_->OffsetOf(page)},
            JobOwner{slot, r, index});
    }
  }
}

uint32_t VirtualKV::ReleaseIdleSlots() {
  uint32_t released = 0;
  for (uint32_t s = 0; s < slots_.size(); s++) {
    if (slots_[s].state != SlotState::kIdle) continue;
    counters_.pagesReclaimed += ReleaseTail(s, 0);
    slots_[s].state = SlotState::kFree;
    released++;
  }
  return released;
}

bool VirtualKV::BuildWithinMapCount(Batch& batch, GrowOutcome& outcome, const std::function<void(Batch&)>& build) {
  build(batch);
  if (batch.jobs.empty() || TryReserveMappings(batch.jobs.size())) return true;
  if (ReleaseIdleSlots() > 0) {
    UndoBatch(batch, 0);
    batch = Batch{};
    build(batch);
    if (TryReserveMappings(batch.jobs.size())) return true;
  }
  const size_t jobs = batch.jobs.size();
  UndoBatch(batch, 0);
  RefuseForMapCount(outcome, MapError("refused to map " + std::to_string(outcome.pagesNeeded) + " KV pages (" +
                                          std::to_string(jobs) + " more mappings)",
                                      ENOMEM, geometry_.pageBytes()));
  return false;
}

bool VirtualKV::FinishBatch(const Batch& batch, const MapBatchResult& result, GrowOutcome* outcome) {
  counters_.mapCalls += result.mapCalls;
  counters_.mapNs += result.mapNs;
  for (size_t j = 0; j < result.completed; j++) counters_.pagesMapped += batch.jobs[j].bytes / geometry_.pageBytes();
  if (result.error == 0) return true;
  VmemError error = MapError("mmap(MAP_FIXED) of KV pages failed with " + std::string(std::strerror(result.error)),
                             result.error, geometry_.pageBytes());
  // Undo the whole batch so that the process gets its mappings back (at vm.max_map_count even the JS
  // heap cannot grow) and the call changed nothing.
  UndoBatch(batch, result.completed);
  if (outcome == nullptr || result.error != ENOMEM) throw error;
  RefuseForMapCount(*outcome, error);
  return false;
}

void VirtualKV::RefuseForMapCount(GrowOutcome& outcome, const VmemError& error) {
  outcome.ok = false;
  outcome.mapCountLimited = true;
  outcome.pagesMapped = 0;
  outcome.refusal = error.what();
}

void VirtualKV::UndoBatch(const Batch& batch, size_t completed) {
  for (size_t j = batch.jobs.size(); j-- > 0;) {
    const JobOwner& owner = batch.owners[j];
    std::vector<uint32_t>& pages = slots_[owner.slot].pages[owner.range];
    if (j < completed) {
      const MapJob& job = batch.jobs[j];
      RunMapJob(MapJob{job.addr, job.bytes, -1, 0});  // back to PROT_NONE; merges with its neighbours
      counters_.pagesMapped -= job.bytes / geometry_.pageBytes();
    }
    while (pages.size() > owner.firstIndex) {
      pool_->Release(pages.back());
      pages.pop_back();
    }
  }
  for (auto [slot, tokens] : batch.tokensBefore) slots_[slot].tokens = tokens;
}

void VirtualKV::JoinPending() {
  if (!worker_.pending()) return;
  MapBatchResult result = worker_.Join();
  Batch batch = std::move(pending_);
  pending_ = Batch{};
  FinishBatch(batch, result);
}

void VirtualKV::Wait() {
  CheckOpen();
  JoinPending();
}

GrowOutcome VirtualKV::Step(const int32_t* lens, size_t count, bool async) {
  CheckOpen();
  JoinPending();
  if (count > slots_.size()) {
    throw VmemError(code::kInvalidArgument, "step: seqLens has " + std::to_string(count) + " entries but there are " +
                                                std::to_string(slots_.size()) + " slots");
  }
  // Validate everything before changing anything.
  std::vector<uint32_t> floors = TokenFloors();
  uint64_t need = 0;
  for (uint32_t s = 0; s < count; s++) {
    if (lens[s] <= 0) continue;
    uint32_t len = static_cast<uint32_t>(lens[s]);
    if (slots_[s].state != SlotState::kActive) {
      throw VmemError(code::kUnknownSlot, "step: " + SlotName(s) + " is not allocated but seqLens[" +
                                              std::to_string(s) + "] = " + std::to_string(len));
    }
    if (len > geometry_.shape().maxContext) {
      throw VmemError(code::kContextOverflow, "step: " + SlotName(s) + " would hold " + std::to_string(len) +
                                                  " tokens, past maxContext " +
                                                  std::to_string(geometry_.shape().maxContext));
    }
    if (len < slots_[s].tokens) {
      throw VmemError(code::kInvalidArgument, "step: " + SlotName(s) + " holds " + std::to_string(slots_[s].tokens) +
                                                  " tokens; seqLen " + std::to_string(len) +
                                                  " would shrink it (use compact or freeSlot)");
    }
    floors[s] = len;
    need += PagesNeeded(s, len);
  }
  GrowOutcome outcome;
  outcome.pagesNeeded = need;
  outcome.pagesAvailable = Available(floors);
  if (need > outcome.pagesAvailable) {
    outcome.ok = false;
    return outcome;
  }
  if (need > pool_->freeCount()) Reclaim(need - pool_->freeCount(), floors);
  outcome.pagesMapped = need;
  Batch batch;
  const bool fits = BuildWithinMapCount(batch, outcome, [&](Batch& b) {
    for (uint32_t s = 0; s < count; s++) {
      if (lens[s] <= 0) continue;
      Grow(s, geometry_.PagesFor(floors[s]), b);
      b.tokensBefore.emplace_back(s, slots_[s].tokens);
      slots_[s].tokens = floors[s];
    }
  });
  if (!fits || batch.jobs.empty()) return outcome;
  if (async) {
    pending_ = batch;
    worker_.Submit(std::move(batch.jobs));
  } else {
    FinishBatch(batch, RunMapBatch(batch.jobs), &outcome);
  }
  return outcome;
}

GrowOutcome VirtualKV::Share(uint32_t src, uint32_t dst, uint32_t tokens) {
  RequireActive(src, "share (source)");
  RequireActive(dst, "share (destination)");
  if (src == dst) throw VmemError(code::kInvalidArgument, "share: source and destination are the same slot");
  if (tokens > slots_[src].tokens) {
    throw VmemError(code::kInvalidArgument, "share: " + SlotName(src) + " holds only " +
                                                std::to_string(slots_[src].tokens) + " tokens, asked to share " +
                                                std::to_string(tokens));
  }
  if (slots_[dst].tokens != 0) {
    throw VmemError(code::kInvalidArgument, "share: destination " + SlotName(dst) + " already holds tokens");
  }
  JoinPending();
  GrowOutcome outcome;
  const uint32_t full = geometry_.FullPages(tokens);
  const size_t partialBytes = size_t{tokens - full * geometry_.rowsPerPage()} * geometry_.tokenBytes();
  outcome.pagesNeeded = partialBytes > 0 ? geometry_.ranges() : 0;
  // dst holds no tokens, so all its (private) pages count as available: they are released first.
  std::vector<uint32_t> floors = TokenFloors();
  outcome.pagesAvailable = Available(floors);
  if (outcome.pagesNeeded > outcome.pagesAvailable) {
    outcome.ok = false;
    return outcome;
  }
  ReleaseTail(dst, 0);
  if (outcome.pagesNeeded > pool_->freeCount()) Reclaim(outcome.pagesNeeded - pool_->freeCount(), floors);
  outcome.pagesMapped = uint64_t{full} * geometry_.ranges() + outcome.pagesNeeded;
  Batch batch;
  const bool fits = BuildWithinMapCount(batch, outcome, [&](Batch& b) {
    for (uint32_t r = 0; r < geometry_.ranges(); r++) {
      std::vector<uint32_t>& mapped = slots_[dst].pages[r];
      for (uint32_t i = 0; i < full; i++) {
        uint32_t page = slots_[src].pages[r][i];
        pool_->Retain(page);
        mapped.push_back(page);
        Queue(b, MapJob{PageAddress(dst, r, i), geometry_.pageBytes(), pool_->fd(), pool_->OffsetOf(page)},
              JobOwner{dst, r, i});
      }
    }
    if (partialBytes > 0) Grow(dst, full + 1, b);
  });
  if (!fits || !FinishBatch(batch, RunMapBatch(batch.jobs), &outcome)) return outcome;
  for (uint32_t r = 0; partialBytes > 0 && r < geometry_.ranges(); r++) {
    std::memcpy(PageAddress(dst, r, full), PageAddress(src, r, full), partialBytes);
  }
  slots_[dst].tokens = tokens;
  return outcome;
}

void VirtualKV::CopyOnWrite(uint32_t slot, uint32_t range, uint32_t index) {
  std::vector<uint32_t>& mapped = slots_[slot].pages[range];
  uint32_t shared = mapped[index];
  uint32_t page = pool_->Take(index > 0 ? mapped[index - 1] : kNoPage);
  char* addr = PageAddress(slot, range, index);
  // The kernel copies the shared page's contents into the new page's place in the memfd.
  ssize_t written = pwrite(pool_->fd(), addr, geometry_.pageBytes(), static_cast<off_t>(pool_->OffsetOf(page)));
  if (written != static_cast<ssize_t>(geometry_.pageBytes())) {
    int err = written < 0 ? errno : EIO;
    pool_->Release(page);
    ThrowSystemError("copying a shared KV page (pwrite)", err);
  }
  Batch batch;
  mapped[index] = page;
  Queue(batch, MapJob{addr, geometry_.pageBytes(), pool_->fd(), pool_->OffsetOf(page)}, JobOwner{slot, range, index});
  MapBatchResult result = RunMapBatch(batch.jobs);
  if (result.error != 0) {
    mapped[index] = shared;
    pool_->Release(page);
    ThrowMapError("mapping a copied KV page (mmap MAP_FIXED)", result.error, geometry_.pageBytes());
  }
  counters_.mapCalls += result.mapCalls;
  counters_.mapNs += result.mapNs;
  counters_.pagesMapped++;
  pool_->Release(shared);  // still referenced by the other slots
}

void VirtualKV::MoveRows(uint32_t slot, uint32_t range, const int32_t* lists, uint32_t heads, size_t sliceBytes,
                         uint32_t kept) {
  char* base = PageAddress(slot, range, 0);
  // Index order is safe: keep[i] >= i, so no source row has been written yet. Rows that stay put cost a
  // compare only (RowOffset divides), so hole filling costs O(dropped) moves.
  for (uint32_t h = 0; h < heads; h++) {
    const int32_t* list = lists + size_t{h} * kept;
    const size_t at = h * sliceBytes;
    for (uint32_t i = 0; i < kept; i++) {
      const uint32_t from = static_cast<uint32_t>(list[i]);
      if (from != i) std::memcpy(base + geometry_.RowOffset(i) + at, base + geometry_.RowOffset(from) + at, sliceBytes);
    }
  }
}

namespace {
// What one keep list covers, and how it is named in messages (as the TS managers name it).
enum class KeepPer { kAll, kLayer, kHead };

std::string KeepListName(KeepPer per, size_t list, uint32_t kvHeads) {
  if (per == KeepPer::kAll) return "keep";
  if (per == KeepPer::kLayer) return "keep[" + std::to_string(list) + "]";
  return "keep[" + std::to_string(list / kvHeads) + "][" + std::to_string(list % kvHeads) + "]";
}

// Entries distinct (except keep[i] = i, which moves nothing, after an earlier entry copied row i), within
// [0, tokens), and keep[i] >= i.
void CheckKeepLists(const int32_t* keep, size_t lists, uint32_t kept, uint32_t tokens, KeepPer per, uint32_t kvHeads) {
  std::vector<int32_t> seen(tokens, -1);
  for (size_t l = 0; l < lists; l++) {
    const int32_t* list = keep + l * kept;
    for (uint32_t i = 0; i < kept; i++) {
      const int32_t p = list[i];
      // Built only for a message: this loop runs over every kept row.
      auto entry = [&] { return KeepListName(per, l, kvHeads) + "[" + std::to_string(i) + "] = " + std::to_string(p); };
      if (p < 0 || static_cast<uint32_t>(p) >= tokens) {
        throw VmemError(code::kInvalidArgument,
                        "compact: " + entry() + " is outside the slot's " + std::to_string(tokens) + " tokens");
      }
      if (static_cast<uint32_t>(p) < i) {
        throw VmemError(code::kInvalidArgument, "compact: " + entry() + " would move a row back (keep[i] must be >= i)");
      }
      if (seen[p] != -1 && static_cast<uint32_t>(p) != i) {
        throw VmemError(code::kInvalidArgument, "compact: " + KeepListName(per, l, kvHeads) + " keeps position " +
                                                    std::to_string(p) + " twice (entries " + std::to_string(seen[p]) +
                                                    " and " + std::to_string(i) + ")");
      }
      seen[p] = static_cast<int32_t>(i);
    }
    for (uint32_t i = 0; i < kept; i++) seen[list[i]] = -1;
  }
}
}  // namespace

GrowOutcome VirtualKV::Compact(uint32_t slot, const int32_t* keep, size_t keepLen, uint32_t kept) {
  RequireActive(slot, "compact");
  const KVShape& shape = geometry_.shape();
  const uint32_t layers = shape.layers, kvHeads = shape.kvHeads;
  const uint32_t tokens = slots_[slot].tokens;
  if (kept > tokens) {
    throw VmemError(code::kInvalidArgument, "compact: cannot keep " + std::to_string(kept) + " tokens of " +
                                                SlotName(slot) + ", which holds " + std::to_string(tokens));
  }
  // Whole-row readings first: with one KV head a per-head list is a per-layer list.
  KeepPer per;
  if (keepLen == kept) {
    per = KeepPer::kAll;
  } else if (keepLen == size_t{kept} * layers) {
    per = KeepPer::kLayer;
  } else if (keepLen == size_t{kept} * layers * kvHeads) {
    per = KeepPer::kHead;
  } else {
    throw VmemError(code::kInvalidArgument, "compact: keep has " + std::to_string(keepLen) +
                                                " positions; expected kept (" + std::to_string(kept) +
                                                "), kept x layers or kept x layers x kvHeads");
  }
  if (per == KeepPer::kHead && (shape.keyHeadBytes == 0 || shape.valueHeadBytes == 0)) {
    throw VmemError(code::kInvalidArgument,
                    "compact: per-head keep lists need rows that split by KV head, and this cache's formats do not "
                    "(no keyHeadBytes / valueHeadBytes); keep one list per layer instead");
  }
  const size_t lists = kept == 0 ? 0 : keepLen / kept;
  CheckKeepLists(keep, lists, kept, tokens, per, kvHeads);
  JoinPending();
  const uint32_t keepPages = geometry_.PagesFor(kept);
  const uint32_t listsPerLayer = per == KeepPer::kHead ? kvHeads : 1;
  auto layerLists = [&](uint32_t layer) { return keep + (per == KeepPer::kAll ? 0 : size_t{layer} * listsPerLayer * kept); };
  // Shared pages that rows will be written into are copied first (the other slots keep the original);
  // shared pages whose rows all stay put stay shared.
  std::vector<std::pair<uint32_t, uint32_t>> copies;  // (range, page index)
  std::vector<uint8_t> written(keepPages);
  for (uint32_t layer = 0; layer < layers; layer++) {
    if (layer == 0 || per != KeepPer::kAll) {
      // Page by page, so that no entry costs a division.
      const int32_t* first = layerLists(layer);
      const uint32_t rows = geometry_.rowsPerPage();
      for (uint32_t page = 0; page < keepPages; page++) {
        const uint32_t end = std::min(kept, (page + 1) * rows);
        uint8_t moved = 0;
        for (uint32_t h = 0; h < listsPerLayer && !moved; h++) {
          const int32_t* list = first + size_t{h} * kept;
          for (uint32_t i = page * rows; i < end; i++) moved |= static_cast<uint32_t>(list[i]) != i;
        }
        written[page] = moved;
      }
    }
    for (uint32_t r = layer * 2; r < layer * 2 + 2; r++) {
      const auto& mapped = slots_[slot].pages[r];
      const uint32_t end = std::min<uint32_t>(keepPages, static_cast<uint32_t>(mapped.size()));
      for (uint32_t i = 0; i < end; i++) {
        if (written[i] && pool_->RefCount(mapped[i]) > 1) copies.emplace_back(r, i);
      }
    }
  }
  GrowOutcome outcome;
  outcome.pagesNeeded = copies.size();
  std::vector<uint32_t> floors = TokenFloors();
  outcome.pagesAvailable = Available(floors);
  if (outcome.pagesNeeded > outcome.pagesAvailable) {
    outcome.ok = false;
    return outcome;
  }
  if (outcome.pagesNeeded > pool_->freeCount()) Reclaim(outcome.pagesNeeded - pool_->freeCount(), floors);
  for (auto [range, index] : copies) CopyOnWrite(slot, range, index);
  outcome.pagesMapped = copies.size();
  for (uint32_t r = 0; r < geometry_.ranges(); r++) {
    const size_t slice = per != KeepPer::kHead ? geometry_.tokenBytes() : r % 2 == 0 ? shape.keyHeadBytes : shape.valueHeadBytes;
    MoveRows(slot, r, layerLists(r / 2), listsPerLayer, slice, kept);
  }
  ReleaseTail(slot, keepPages);
  slots_[slot].tokens = kept;
  AfterRelease();
  return outcome;
}

uint64_t VirtualKV::Trim() {
  CheckOpen();
  JoinPending();
  return pool_->Trim();
}

void VirtualKV::Close() {
  if (closed_) return;
  if (worker_.pending()) worker_.Join();  // its result no longer matters: everything is unmapped below
  closed_ = true;
  space_.reset();
  pool_.reset();
  slots_.clear();
}

}  // namespace vserve::vmem
