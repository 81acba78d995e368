#include "vmem_pool.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>

#include "vmem_errors.h"

namespace vserve::vmem {

PagePool::PagePool(size_t pageBytes) : pageBytes_(pageBytes) {
  fd_ = memfd_create("vserve-kv-pool", MFD_CLOEXEC);
  if (fd_ < 0) ThrowSystemError("memfd_create for the KV page pool", errno);
}

PagePool::~PagePool() {
  if (fd_ >= 0) close(fd_);
}

void PagePool::SetFree(uint32_t page, bool free) {
  uint64_t bit = uint64_t{1} << (page % 64);
  if (free) {
    freeBits_[page / 64] |= bit;
  } else {
    freeBits_[page / 64] &= ~bit;
  }
}

void PagePool::AddRun(uint32_t start, uint32_t length) {
  runs_[start] = length;
  runsByLength_.emplace(length, start);
}

void PagePool::RemoveRun(uint32_t start) {
  auto it = runs_.find(start);
  runsByLength_.erase({it->second, start});
  runs_.erase(it);
}

void PagePool::MarkUsed(uint32_t page) {
  auto it = std::prev(runs_.upper_bound(page));  // the run holding the free page
  uint32_t start = it->first, end = it->first + it->second;
  RemoveRun(start);
  if (page > start) AddRun(start, page - start);
  if (page + 1 < end) AddRun(page + 1, end - page - 1);
  SetFree(page, false);
  freeCount_--;
}

void PagePool::MarkFree(uint32_t page) {
  uint32_t start = page, end = page + 1;
  auto right = runs_.find(page + 1);
  if (right != runs_.end()) {
    end += right->second;
    RemoveRun(page + 1);
  }
  auto left = runs_.lower_bound(page);
  if (left != runs_.begin() && std::prev(left)->first + std::prev(left)->second == page) {
    start = std::prev(left)->first;
    RemoveRun(start);
  }
  AddRun(start, end - start);
  SetFree(page, true);
  freeCount_++;
}

void PagePool::Resize(uint32_t pages) {
  uint32_t old = pageCount();
  if (pages < old) {
    for (uint32_t p = pages; p < old; p++) {
      if (!IsFree(p)) {
        throw VmemError(code::kPoolInUse, "cannot shrink the KV pool to " + std::to_string(pages) + " pages: page " +
                                              std::to_string(p) + " is still mapped (free or compact slots first)");
      }
    }
  }
  if (ftruncate(fd_, static_cast<off_t>(OffsetOf(pages))) != 0) ThrowSystemError("ftruncate of the KV page pool", errno);
  if (pages < old) {
    // The pages that drop off the end are all free: they are the tail of the last run.
    for (uint32_t p = pages; p < old; p++) SetFree(p, false);
    freeCount_ -= old - pages;
    uint32_t start = runs_.rbegin()->first;
    RemoveRun(start);
    if (start < pages) AddRun(start, pages - start);
  }
  freeBits_.resize((pages + 63) / 64, 0);
  refs_.resize(pages, 0);
  maybeCommitted_.resize(pages, 0);
  if (pages > old) {
    for (uint32_t p = old; p < pages; p++) SetFree(p, true);
    freeCount_ += pages - old;
    uint32_t start = old;
    if (!runs_.empty() && runs_.rbegin()->first + runs_.rbegin()->second == old) {
      start = runs_.rbegin()->first;
      RemoveRun(start);
    }
    AddRun(start, pages - start);
  }
}

uint32_t PagePool::PickExtentStart() const {
  if (runsByLength_.empty()) return kNoPage;
  auto [length, start] = *runsByLength_.rbegin();
  // A run that follows a used page may be where that page's slot grows next: start in its middle.
  return start == 0 ? 0 : start + length / 2;
}

uint32_t PagePool::Take(uint32_t after) {
  if (freeCount_ == 0) return kNoPage;
  uint32_t page = (after != kNoPage && after + 1 < pageCount() && IsFree(after + 1)) ? after + 1 : PickExtentStart();
  MarkUsed(page);
  refs_[page] = 1;
  maybeCommitted_[page] = 1;
  return page;
}

void PagePool::Retain(uint32_t page) { refs_[page]++; }

bool PagePool::Release(uint32_t page) {
  if (--refs_[page] != 0) return false;
  MarkFree(page);
  return true;
}

void PagePool::PunchRun(uint32_t first, uint32_t count) {
  if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(OffsetOf(first)),
                static_cast<off_t>(OffsetOf(count))) != 0) {
    ThrowSystemError("fallocate(PUNCH_HOLE) on the KV page pool", errno);
  }
}

uint64_t PagePool::Trim() {
  uint64_t punched = 0;
  uint32_t runStart = 0, runLen = 0;
  // One fallocate per run of free, possibly committed pages.
  for (uint32_t p = 0; p <= pageCount(); p++) {
    bool punchable = p < pageCount() && IsFree(p) && maybeCommitted_[p];
    if (punchable) {
      if (runLen == 0) runStart = p;
      runLen++;
      maybeCommitted_[p] = 0;
    } else if (runLen > 0) {
      PunchRun(runStart, runLen);
      punched += OffsetOf(runLen);
      runLen = 0;
    }
  }
  return punched;
}

uint64_t PagePool::AllocatedBytes() const {
  struct stat st;
  if (fstat(fd_, &st) != 0) ThrowSystemError("fstat of the KV page pool", errno);
  return uint64_t(st.st_blocks) * 512;
}

}  // namespace vserve::vmem
