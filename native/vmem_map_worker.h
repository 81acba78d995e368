// Runs batches of map jobs, either right away or on a background thread so that mapping the pages of
// step n+1 overlaps the compute of step n. One batch is in flight at a time; Join() waits for it.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "vmem_address_space.h"

namespace vserve::vmem {

struct MapBatchResult {
  size_t completed = 0;  // jobs that succeeded, in order; the rest did not run
  int error = 0;         // errno of the job that failed, 0 when all ran
  uint64_t mapNs = 0;    // time spent inside mmap, summed over the batch's map jobs
  uint64_t mapCalls = 0;
};

// Runs the jobs in order and stops at the first failure.
MapBatchResult RunMapBatch(const std::vector<MapJob>& jobs);

class MapWorker {
 public:
  MapWorker() = default;
  ~MapWorker();
  MapWorker(const MapWorker&) = delete;
  MapWorker& operator=(const MapWorker&) = delete;

  // Starts `jobs` in the background. The previous batch must have been joined.
  void Submit(std::vector<MapJob> jobs);
  bool pending() const { return pending_; }
  // Waits for the batch submitted last and returns its result.
  MapBatchResult Join();

 private:
  void Loop();

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<MapJob> jobs_;
  MapBatchResult result_;
  bool hasWork_ = false;
  bool done_ = false;
  bool stopping_ = false;
  bool pending_ = false;  // touched only by the owning (JS) thread
};

}  // namespace vserve::vmem
