#include "vmem_pool.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

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
  // Pages that drop off the end must not be counted free any more; growing adds free pages.
  for (uint32_t p = pages; p < old; p++) {
    SetFree(p, false);
    freeCount_--;
  }
  freeBits_.resize((pages + 63) / 64, 0);
  refs_.resize(pages, 0);
  maybeCommitted_.resize(pages, 0);
  for (uint32_t p = old; p < pages; p++) {
    SetFree(p, true);
    freeCount_++;
  }
  // Clear stale bits past the end so word scans see only real pages.
  if (pages % 64 != 0 && !freeBits_.empty()) freeBits_.back() &= (uint64_t{1} << (pages % 64)) - 1;
}

uint32_t PagePool::PickExtentStart() const {
  uint32_t bestStart = kNoPage, bestLen = 0, runStart = 0, runLen = 0;
  uint32_t n = pageCount();
  for (uint32_t word = 0; word < freeBits_.size(); word++) {
    uint64_t bits = freeBits_[word];
    uint32_t base = word * 64;
    if (bits == 0 && runLen == 0) continue;  // fast skip of fully used words
    for (uint32_t i = 0; i < 64 && base + i < n; i++) {
      if ((bits >> i) & 1) {
        if (runLen == 0) runStart = base + i;
        runLen++;
        if (runLen > bestLen) {
          bestLen = runLen;
          bestStart = runStart;
        }
      } else {
        runLen = 0;
      }
    }
  }
  if (bestStart == kNoPage) return kNoPage;
  // A run that follows a used page may be where that page's slot grows next: start in its middle.
  return bestStart == 0 ? 0 : bestStart + bestLen / 2;
}

uint32_t PagePool::Take(uint32_t after) {
  if (freeCount_ == 0) return kNoPage;
  uint32_t page = (after != kNoPage && after + 1 < pageCount() && IsFree(after + 1)) ? after + 1 : PickExtentStart();
  SetFree(page, false);
  freeCount_--;
  refs_[page] = 1;
  maybeCommitted_[page] = 1;
  return page;
}

void PagePool::Retain(uint32_t page) { refs_[page]++; }

bool PagePool::Release(uint32_t page) {
  if (--refs_[page] != 0) return false;
  SetFree(page, true);
  freeCount_++;
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
