#include "vmem_map_worker.h"

#include <chrono>

namespace vserve::vmem {

MapBatchResult RunMapBatch(const std::vector<MapJob>& jobs) {
  MapBatchResult result;
  auto start = std::chrono::steady_clock::now();
  for (const MapJob& job : jobs) {
    int err = RunMapJob(job);
    if (err != 0) {
      result.error = err;
      break;
    }
    result.completed++;
  }
  result.mapCalls = result.completed;
  result.mapNs = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  return result;
}

MapWorker::~MapWorker() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MapWorker::Submit(std::vector<MapJob> jobs) {
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_ = std::move(jobs);
    hasWork_ = true;
    done_ = false;
  }
  pending_ = true;
  wake_.notify_all();
}

MapBatchResult MapWorker::Join() {
  if (!pending_) return {};
  std::unique_lock<std::mutex> lock(mutex_);
  wake_.wait(lock, [this] { return done_; });
  pending_ = false;
  return result_;
}

void MapWorker::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return hasWork_ || stopping_; });
    if (stopping_) return;
    hasWork_ = false;
    std::vector<MapJob> jobs = std::move(jobs_);
    lock.unlock();
    MapBatchResult result = RunMapBatch(jobs);
    lock.lock();
    result_ = result;
    done_ = true;
    wake_.notify_all();
  }
}

}  // namespace vserve::vmem
