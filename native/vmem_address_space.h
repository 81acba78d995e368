// The virtual side of the virtual KV cache: one PROT_NONE, MAP_NORESERVE reservation that costs no
// memory, into which pool pages are mapped (MAP_FIXED | MAP_SHARED) and from which they are unmapped by
// mapping PROT_NONE back over them, so the range stays reserved and no other allocation can land there.
#pragma once
#include <cstddef>
#include <cstdint>

namespace vserve::vmem {

class AddressSpace {
 public:
  explicit AddressSpace(size_t bytes);
  ~AddressSpace();
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  char* base() const { return base_; }
  size_t bytes() const { return bytes_; }

 private:
  char* base_ = nullptr;
  size_t bytes_ = 0;
};

// One mmap call: `bytes` at `addr` become pool memory at `fileOffset` (fd >= 0) or inaccessible (fd < 0).
struct MapJob {
  char* addr;
  size_t bytes;
  int fd;
  uint64_t fileOffset;
};

// Runs one job; returns 0 or the errno of the failed mmap.
int RunMapJob(const MapJob& job);

}  // namespace vserve::vmem
