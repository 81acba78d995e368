#include "thread_pool.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VSERVE_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define VSERVE_CPU_RELAX() asm volatile("yield")
#else
#define VSERVE_CPU_RELAX() ((void)0)
#endif

namespace vserve {
namespace {

// How long an idle worker spins before it sleeps: longer than the gap between two ops of a decode
// step, short enough not to burn a core while the server is idle.
std::chrono::microseconds spinBudget() {
  static const long us = [] {
    const char* env = std::getenv("VSERVE_SPIN_US");
    return env != nullptr ? std::atol(env) : 1000L;
  }();
  return std::chrono::microseconds(us);
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  // Workers start from generation 0 explicitly: reading it in the new thread could miss a job that
  // was published before the thread got to run.
  for (int i = 1; i < threads; i++) workers_.emplace_back([this] { workerLoop(0); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    stopping_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::drainTasks() {
  running_.fetch_add(1);  // seq_cst: visible to the caller before it can see the job as finished
  for (;;) {
    const uint64_t c = cursor_.fetch_add(1, std::memory_order_acq_rel);
    const Job& job = jobs_[(c >> 32) & 1];
    const size_t task = size_t(c & 0xffffffffu);
    if (task >= job.tasks) break;
    job.fn(job.ctx, task);
  }
  running_.fetch_sub(1, std::memory_order_release);
}

void ThreadPool::run(size_t tasks, TaskFn fn, void* ctx) {
  std::lock_guard<std::mutex> guard(runMutex_);
  const uint64_t id = generation_.load(std::memory_order_relaxed) + 1;
  jobs_[id & 1] = Job{fn, ctx, tasks};
  cursor_.store(id << 32, std::memory_order_release);
  generation_.store(id);  // seq_cst: publishes the job before sleepers_ is read
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(sleepMutex_); }
    wake_.notify_all();
  }
  drainTasks();
  // Every task is claimed; wait for those still being run by workers.
  while (running_.load(std::memory_order_acquire) != 0) VSERVE_CPU_RELAX();
}

void ThreadPool::workerLoop(uint64_t seen) {
  for (;;) {
    const auto spinUntil = std::chrono::steady_clock::now() + spinBudget();
    unsigned spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      VSERVE_CPU_RELAX();
      if ((++spins & 255) == 0 && std::chrono::steady_clock::now() > spinUntil) {
        std::unique_lock<std::mutex> lock(sleepMutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load()) return;
    drainTasks();
  }
}

int defaultThreadCount() {
  if (const char* env = std::getenv("VSERVE_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  // Physical cores: distinct (package, core id) pairs in sysfs; hardware threads as a fallback.
  std::set<std::string> cores;
  const unsigned logical = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < logical; cpu++) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return logical > 0 ? int(logical) : 1;
    cores.insert(p + ":" + c);
  }
  return cores.empty() ? 1 : int(cores.size());
}

namespace {
std::unique_ptr<ThreadPool> gPool;
}

ThreadPool& pool() {
  if (!gPool) gPool = std::make_unique<ThreadPool>(defaultThreadCount());
  return *gPool;
}

void setPoolThreads(int threads) {
  gPool.reset();
  gPool = std::make_unique<ThreadPool>(threads);
}

}  // namespace vserve
