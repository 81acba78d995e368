// Runtime controls and facts: the ISA in use (and switching it), the pool's thread count, and a
// memory read-bandwidth probe that uses the same pool and vector loads as the kernels.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "cpu_features.h"
#include "js_args.h"
#include "modules.h"
#include "thread_pool.h"

namespace vserve {
namespace {

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), kernels().isa); }

Napi::Value SupportedIsas(const Napi::CallbackInfo& info) {
  const auto isas = supportedIsas();
  Napi::Array result = Napi::Array::New(info.Env(), isas.size());
  for (size_t i = 0; i < isas.size(); i++) result.Set(uint32_t(i), isas[i]);
  return result;
}

// The activation rows from which the kernel set in use multiplies packed weights on bf16 tiles (0: never).
Napi::Value Bf16MatmulFrom(const Napi::CallbackInfo& info) {
  const BF16Kernels* b = kernels().bf16;
  return Napi::Number::New(info.Env(), b == nullptr ? 0.0 : double(b->from));
}

Napi::Value SelectIsa(const Napi::CallbackInfo& info) {
  Args args(info, "selectIsa");
  try {
    selectIsa(args.string(0, "isa"));
  } catch (const std::invalid_argument& e) {
    args.rangeError(e.what());
  }
  return Napi::String::New(info.Env(), kernels().isa);
}

// sumOrder() / setSumOrder(name): how prefill matmuls add up, 'fast' or 'llama.cpp' (prefillInLlamaCppOrder).
Napi::Value SumOrder(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), prefillInLlamaCppOrder() ? "llama.cpp" : "fast");
}

Napi::Value SetSumOrder(const Napi::CallbackInfo& info) {
  Args args(info, "setSumOrder");
  const std::string order = args.string(0, "order");
  if (order != "fast" && order != "llama.cpp") args.rangeError("order must be 'fast' or 'llama.cpp', got '" + order + "'");
  setPrefillInLlamaCppOrder(order == "llama.cpp");
  return SumOrder(info);
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool().threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args args(info, "setThreads");
  const size_t n = args.index(0, "threads", 1024);
  setPoolThreads(n == 0 ? defaultThreadCount() : int(n));  // 0 restores the default
  return Napi::Number::New(info.Env(), pool().threads());
}

// readBandwidth(bytes, threads?) -> { bytesPerSecond, bytes, threads, seconds }: the best of several
// passes reading a buffer of `bytes` (make it much larger than the last-level cache).
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Args args(info, "readBandwidth");
  const size_t bytes = args.index(0, "bytes") & ~size_t(4095);
  if (bytes < (size_t(1) << 20)) args.rangeError("bytes must be at least 1 MiB");
  const int threads = info.Length() > 1 && !info[1].IsUndefined() ? int(args.index(1, "threads", 1024)) : pool().threads();
  std::unique_ptr<ThreadPool> own;
  ThreadPool* p = &pool();
  if (threads > 0 && threads != p->threads()) {
    own = std::make_unique<ThreadPool>(threads);
    p = own.get();
  }
  auto* buffer = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (buffer == nullptr) args.rangeError("cannot allocate the probe buffer");
  std::unique_ptr<uint8_t, decltype(&std::free)> hold(buffer, &std::free);
  const size_t tasks = size_t(p->threads());
  const size_t slice = (bytes / tasks) & ~size_t(63);
  p->parallelFor(tasks, [&](size_t t) { std::memset(buffer + t * slice, int(t + 1), slice); });
  const KernelSet& k = kernels();
  double best = 1e30;
  volatile uint64_t sink = 0;
  for (int pass = 0; pass < 6; pass++) {
    uint64_t sums[1024] = {};
    const auto start = std::chrono::steady_clock::now();
    p->parallelFor(tasks, [&](size_t t) { sums[t] = k.readAll(buffer + t * slice, slice); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, s);
    for (size_t t = 0; t < tasks; t++) sink = sink + sums[t];
  }
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("bytesPerSecond", double(slice * tasks) / best);
  result.Set("bytes", double(slice * tasks));
  result.Set("threads", double(tasks));
  result.Set("seconds", best);
  return result;
}

}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports) {
  try {
    kernels();  // choose now, so a bad VSERVE_ISA fails at load time with a clear message
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, std::string("VSERVE_ISA: ") + e.what());
  }
  exports.Set("isa", Napi::Function::New(env, Isa, "isa"));
  exports.Set("supportedIsas", Napi::Function::New(env, SupportedIsas, "supportedIsas"));
  exports.Set("selectIsa", Napi::Function::New(env, SelectIsa, "selectIsa"));
  exports.Set("bf16MatmulFrom", Napi::Function::New(env, Bf16MatmulFrom, "bf16MatmulFrom"));
  exports.Set("sumOrder", Napi::Function::New(env, SumOrder, "sumOrder"));
  exports.Set("setSumOrder", Napi::Function::New(env, SetSumOrder, "setSumOrder"));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads, "getThreads"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth, "readBandwidth"));
}

}  // namespace vserve
