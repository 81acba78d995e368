#include "vmem_address_space.h"

#include <sys/mman.h>

#include <cerrno>
#include <string>

#include "vmem_errors.h"

namespace vserve::vmem {

AddressSpace::AddressSpace(size_t bytes) : bytes_(bytes) {
  void* p = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    throw VmemError(code::kAddressSpace,
                    "cannot reserve " + std::to_string(bytes >> 20) +
                        " MiB of virtual address space for the KV cache (mmap: " + std::to_string(err) +
                        (err == ENOMEM ? ", ENOMEM" : "") +
                        "). The reservation uses no memory, but it counts against RLIMIT_AS: raise it "
                        "(`ulimit -v unlimited`) or lower maxSlots / maxContext.");
  }
  base_ = static_cast<char*>(p);
}

AddressSpace::~AddressSpace() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

int RunMapJob(const MapJob& job) {
  void* p = job.fd >= 0 ? mmap(job.addr, job.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, job.fd,
                               static_cast<off_t>(job.fileOffset))
                        : mmap(job.addr, job.bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                               -1, 0);
  return p == MAP_FAILED ? errno : 0;
}

}  // namespace vserve::vmem
