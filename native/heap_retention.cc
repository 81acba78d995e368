// Keeping freed heap memory mapped, for the KV tiers' reads.
//
// A tier read returns one multi-megabyte buffer per block, and a prompt's blocks are held until the pool
// takes them. With glibc's default settings each such buffer is either mmap'ed on its own or, once freed
// with others, trimmed from the top of the heap; either way the next read gets pages the kernel has to
// fault in and zero one at a time (bench/README.md, the cluster benchmark's part 3, has the counts and
// the rates with and without). Raising the mmap threshold to glibc's largest and the trim threshold to
// `bytes` keeps up to `bytes` of freed memory in the process for the next reads.
// Other C libraries have no such settings; there the call reports false and changes nothing.
#include <cstdint>  // first: it defines __GLIBC__ on glibc hosts

#include "js_args.h"
#include "modules.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vserve {
namespace {

// glibc refuses mmap thresholds above half its largest heap (32 MiB on 64-bit hosts).
constexpr int kLargestMmapThreshold = 32 << 20;

// retainFreedHeap(bytes) -> whether the allocator now keeps up to `bytes` of freed memory mapped.
Napi::Value RetainFreedHeap(const Napi::CallbackInfo& info) {
  Args args(info, "retainFreedHeap");
  const size_t bytes = args.index(0, "bytes", size_t(INT32_MAX));
#if defined(__GLIBC__)
  const bool ok = mallopt(M_MMAP_THRESHOLD, kLargestMmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, int(bytes)) == 1;
  return Napi::Boolean::New(info.Env(), ok);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

}  // namespace

void InitHeapRetention(Napi::Env env, Napi::Object exports) {
  exports.Set("retainFreedHeap", Napi::Function::New(env, RetainFreedHeap, "retainFreedHeap"));
}
}  // namespace vserve
