// Page-aligned ArrayBuffers for the KV caches kept in JS memory (ArrayKV, the paged and static pools).
//
// V8 gets a large ArrayBuffer from calloc, and glibc hands that out 16 bytes into a page (its chunk
// header), so a Float32Array's rows sit 16 bytes off every cache line and each 64-byte vector load of
// a cache row straddles two lines: attention measured about 10% slower on such a buffer than on one
// that starts on a line. These buffers are mmap'ed, so they start on a page, are zero and take memory
// only where written, like calloc's.
#include <sys/mman.h>

#include <cstdint>
#include <string>

#include "js_args.h"
#include "modules.h"

namespace vserve {
namespace {

struct Mapping {
  void* base;
  size_t bytes;
};

// alignedBuffer(bytes) -> ArrayBuffer of `bytes` bytes starting on a page boundary.
Napi::Value AlignedBuffer(const Napi::CallbackInfo& info) {
  Args args(info, "alignedBuffer");
  const size_t bytes = args.index(0, "bytes");
  const size_t mapped = bytes == 0 ? 1 : bytes;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) args.rangeError("cannot allocate " + std::to_string(bytes) + " bytes (mmap failed)");
  Napi::Env env = info.Env();
  auto* hint = new Mapping{p, mapped};
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, p, bytes,
      [](Napi::Env finalizeEnv, void*, Mapping* m) {
        munmap(m->base, m->bytes);
        Napi::MemoryManagement::AdjustExternalMemory(finalizeEnv, -int64_t(m->bytes));
        delete m;
      },
      hint);
  // So the garbage collector counts it when deciding when to run.
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(mapped));
  return buffer;
}

// byteAlignment(typedArray) -> the largest power of two, up to 4096, dividing its data address.
Napi::Value ByteAlignment(const Napi::CallbackInfo& info) {
  Args args(info, "byteAlignment");
  const uintptr_t address = uintptr_t(args.bytes(0, "array").data);
  uintptr_t alignment = 1;
  while (alignment < 4096 && address % (alignment * 2) == 0) alignment *= 2;
  return Napi::Number::New(info.Env(), double(alignment));
}

}  // namespace

void InitAlignedBuffer(Napi::Env env, Napi::Object exports) {
  exports.Set("alignedBuffer", Napi::Function::New(env, AlignedBuffer, "alignedBuffer"));
  exports.Set("byteAlignment", Napi::Function::New(env, ByteAlignment, "byteAlignment"));
}

}  // namespace vserve
