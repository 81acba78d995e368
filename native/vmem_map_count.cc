#include "vmem_map_count.h"

#include <fstream>
#include <mutex>
#include <string>

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

std::mutex budgetMutex;
// VMAs that may still be added before the margin, as last measured minus what was reserved since
// (unmaps are not credited, so the estimate only errs low until the next measurement).
int64_t headroom = -1;
}  // namespace

bool TryReserveMappings(size_t jobs) {
  std::lock_guard<std::mutex> lock(budgetMutex);
  const int64_t wanted = static_cast<int64_t>(jobs) * 2;
  if (wanted > headroom) headroom = ReadMaxMapCount() - CountMappings() - kMapCountMargin;
  if (wanted > headroom) {
    headroom = -1;  // measure again next time: unmapping may have made room
    return false;
  }
  headroom -= wanted;
  return true;
}

}  // namespace vserve::vmem
