// A persistent thread pool for the kernels. The calling thread works as thread 0; workers spin
// briefly after each job before sleeping, so the ~150 ops of a decode step do not each pay a futex
// wake-up. Jobs are split into tasks taken from a shared atomic counter, and the caller only waits
// for workers that actually took a task: a worker that is descheduled (the machine is busy with
// other processes) never holds a job up, the caller just runs its share.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace vserve {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return int(workers_.size()) + 1; }

  // Calls fn(task) for every task in [0, tasks), spread over the pool; returns when all are done.
  template <class Fn>
  void parallelFor(size_t tasks, Fn&& fn) {
    if (tasks == 0) return;
    if (tasks == 1 || workers_.empty() || tasks >= (size_t(1) << 32)) {
      for (size_t t = 0; t < tasks; t++) fn(t);
      return;
    }
    run(tasks, [](void* ctx, size_t t) { (*static_cast<Fn*>(ctx))(t); }, &fn);
  }

 private:
  using TaskFn = void (*)(void* ctx, size_t task);
  struct Job {
    TaskFn fn = nullptr;
    void* ctx = nullptr;
    size_t tasks = 0;
  };
  void run(size_t tasks, TaskFn fn, void* ctx);
  void drainTasks();
  void workerLoop(uint64_t seen);

  std::vector<std::thread> workers_;
  std::mutex runMutex_;  // one job at a time, even if several JS threads call in
  // Jobs alternate between two slots: a worker still finishing job k reads slot k % 2 while the
  // caller may already be filling slot (k + 1) % 2; it cannot reach job k + 2 before that worker
  // leaves (it waits for running_ == 0).
  Job jobs_[2];
  // (job id << 32) | next task index: one fetch_add both claims a task and says which job it is of.
  alignas(64) std::atomic<uint64_t> cursor_{0};
  alignas(64) std::atomic<uint64_t> generation_{0};  // the latest job id; workers watch it
  alignas(64) std::atomic<int> running_{0};          // threads inside drainTasks
  // Sleeping.
  std::mutex sleepMutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stopping_{false};
};

// The process-wide pool used by every op (created on first use with defaultThreadCount()).
ThreadPool& pool();
// Replaces the pool with one of `threads` threads.
void setPoolThreads(int threads);
// One per physical core (VSERVE_THREADS overrides).
int defaultThreadCount();

}  // namespace vserve
