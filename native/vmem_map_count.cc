#include "vmem_map_count.h"

#include <fstream>
#include <string>

#include "vmem_errors.h"

namespace vserve::vmem {

namespace {
int64_t ReadMaxMapCount() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  int64_t limit = 65530;
  in >> limit;
  return limit;
}

int64_t CountMappings() {
  std::ifstream in("/proc/self/maps");
  int64_t lines = 0;
  for (std::string line; std::getline(in, line);) lines++;
  return lines;
}
}  // namespace

void MapCountBudget::Reserve(size_t jobs, size_t pageBytes) {
  const int64_t wanted = static_cast<int64_t>(jobs) * 2;
  if (wanted <= headroom_) {
    headroom_ -= wanted;
    return;
  }
  headroom_ = ReadMaxMapCount() - CountMappings() - kMargin;
  if (wanted > headroom_) {
    VmemError error = MapError("refused to map KV pages (" + std::to_string(jobs) + " more mappings)", ENOMEM, pageBytes);
    headroom_ = -1;
    throw error;
  }
  headroom_ -= wanted;
}

}  // namespace vserve::vmem
