// Errors of the vmem (KV virtual memory) subsystem. Each carries a stable code that the binding copies
// to the JS error's `.code`, so callers can branch on the kind of failure instead of parsing messages.
#pragma once
#include <stdexcept>
#include <string>

namespace vserve::vmem {

namespace code {
inline constexpr const char* kInvalidArgument = "ERR_KV_INVALID_ARGUMENT";
inline constexpr const char* kUnknownSlot = "ERR_KV_UNKNOWN_SLOT";
inline constexpr const char* kDoubleFree = "ERR_KV_DOUBLE_FREE";
inline constexpr const char* kContextOverflow = "ERR_KV_CONTEXT_OVERFLOW";
inline constexpr const char* kMapCount = "ERR_KV_MAX_MAP_COUNT";
inline constexpr const char* kAddressSpace = "ERR_KV_ADDRESS_SPACE";
inline constexpr const char* kPoolInUse = "ERR_KV_POOL_IN_USE";
inline constexpr const char* kSystem = "ERR_KV_SYSTEM";
inline constexpr const char* kClosed = "ERR_KV_CLOSED";
}  // namespace code

class VmemError : public std::runtime_error {
 public:
  VmemError(const char* errorCode, const std::string& message) : std::runtime_error(message), code_(errorCode) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

// A failed system call, with errno's text appended.
[[noreturn]] void ThrowSystemError(const std::string& what, int err);

// mmap failed while mapping or unmapping KV pages; ENOMEM there means vm.max_map_count was hit.
VmemError MapError(const std::string& what, int err, size_t pageBytes);
[[noreturn]] inline void ThrowMapError(const std::string& what, int err, size_t pageBytes) {
  throw MapError(what, err, pageBytes);
}

}  // namespace vserve::vmem
