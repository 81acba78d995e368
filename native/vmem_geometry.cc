#include "vmem_geometry.h"

#include <unistd.h>

#include <string>
#include <utility>

#include "vmem_errors.h"

namespace vserve::vmem {

namespace {
void RequireInRange(const char* name, uint64_t value, uint64_t lo, uint64_t hi) {
  if (value < lo || value > hi) {
    throw VmemError(code::kInvalidArgument, std::string(name) + " must be between " + std::to_string(lo) + " and " +
                                                std::to_string(hi) + ", got " + std::to_string(value));
  }
}

constexpr uint64_t kMaxReservation = uint64_t{1} << 46;  // 64 TiB, well inside a 47-bit user address space
}  // namespace

KVGeometry::KVGeometry(const KVShape& shape, size_t pageBytes) : shape_(shape), pageBytes_(pageBytes) {
  RequireInRange("layers", shape.layers, 1, 4096);
  RequireInRange("kvHeads", shape.kvHeads, 1, 4096);
  RequireInRange("headDim", shape.headDim, 1, 65536);
  RequireInRange("maxSlots", shape.maxSlots, 1, 65536);
  RequireInRange("maxContext", shape.maxContext, 1, uint64_t{1} << 24);
  RequireInRange("tokenBytes", shape.tokenBytes, 1, uint64_t{1} << 24);
  size_t osPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (pageBytes == 0 || pageBytes % 4096 != 0 || pageBytes % osPage != 0 || pageBytes > (size_t{2} << 20)) {
    throw VmemError(code::kInvalidArgument, "pageSize must be a multiple of 4 KiB (and of the OS page size, " +
                                                std::to_string(osPage) + ") up to 2 MiB, got " + std::to_string(pageBytes));
  }
  if (shape.tokenBytes > pageBytes) {
    throw VmemError(code::kInvalidArgument, "a token's row (" + std::to_string(shape.tokenBytes) +
                                                " bytes) does not fit a page of " + std::to_string(pageBytes) +
                                                " bytes; use a larger pageSize");
  }
  RequireInRange("rowGroup", shape.rowGroup, 1, 4096);
  // Head slices must lie inside the row, or compaction would move bytes of the next row.
  for (auto [name, slice] : {std::pair{"keyHeadBytes", shape.keyHeadBytes}, std::pair{"valueHeadBytes", shape.valueHeadBytes}}) {
    if (uint64_t{slice} * shape.kvHeads > shape.tokenBytes) {
      throw VmemError(code::kInvalidArgument, std::string(name) + " x kvHeads (" + std::to_string(slice) + " x " +
                                                  std::to_string(shape.kvHeads) + ") is more than a row's " +
                                                  std::to_string(shape.tokenBytes) + " bytes");
    }
  }
  rowsPerPage_ = static_cast<uint32_t>(pageBytes / shape.tokenBytes / shape.rowGroup * shape.rowGroup);
  if (rowsPerPage_ == 0) {
    throw VmemError(code::kInvalidArgument, "a group of " + std::to_string(shape.rowGroup) + " rows of " +
                                                std::to_string(shape.tokenBytes) + " bytes does not fit a page of " +
                                                std::to_string(pageBytes) + " bytes; use a larger pageSize");
  }
  uint64_t padded = (uint64_t{shape.maxContext} + rowsPerPage_ - 1) / rowsPerPage_ * rowsPerPage_;
  if (padded > (uint64_t{1} << 30)) {
    throw VmemError(code::kInvalidArgument, "maxContext padded to whole pages is too large; use a smaller pageSize");
  }
  paddedContext_ = static_cast<uint32_t>(padded);
  slotBytes_ = padded / rowsPerPage_ * pageBytes;
  uint64_t total = 0;
  if (__builtin_mul_overflow(uint64_t{slotBytes_}, uint64_t{shape.maxSlots}, &rangeBytes_) ||
      __builtin_mul_overflow(uint64_t{rangeBytes_}, uint64_t{ranges()}, &total) || total > kMaxReservation) {
    throw VmemError(code::kAddressSpace, "the KV cache would need more than 64 TiB of address space (layers x 2 x "
                                         "maxSlots x maxContext x tokenBytes); lower maxSlots or maxContext");
  }
}

}  // namespace vserve::vmem
