#include "vmem_errors.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace vserve::vmem {

namespace {
std::string ReadFirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line.empty() ? "unknown" : line;
}

size_t CountLines(const char* path) {
  std::ifstream in(path);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) lines++;
  return lines;
}
}  // namespace

void ThrowSystemError(const std::string& what, int err) {
  throw VmemError(code::kSystem, what + ": " + std::strerror(err));
}

VmemError MapError(const std::string& what, int err, size_t pageBytes) {
  if (err != ENOMEM) return VmemError(code::kSystem, what + ": " + std::strerror(err));
  return VmemError(code::kMapCount,
                   what + ": the process is at or near vm.max_map_count (limit " +
                       ReadFirstLine("/proc/sys/vm/max_map_count") + ", " + std::to_string(CountLines("/proc/self/maps")) +
                       " mappings now). Use a bigger KV page size (now " + std::to_string(pageBytes / 1024) +
                       " KiB; up to 2048 KiB) so fewer pages are mapped, or raise the limit with "
                       "`sysctl -w vm.max_map_count=262144`.");
}

}  // namespace vserve::vmem
