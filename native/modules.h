// Registration of the addon's subsystems. Add a subsystem by declaring its Init function here and
// calling it from InitModules in modules.cc.
#pragma once
#include <napi.h>

namespace vserve {
void InitModules(Napi::Env env, Napi::Object exports);

// CPU compute core
void InitRuntime(Napi::Env env, Napi::Object exports);      // runtime.cc: ISA, threads, bandwidth
void InitPeakCompute(Napi::Env env, Napi::Object exports);  // peak_compute.cc: measured f32 / int8 peak
void InitTensors(Napi::Env env, Napi::Object exports);      // weight_tensor.cc
void InitMatmul(Napi::Env env, Napi::Object exports);       // matmul.cc
void InitEmbedding(Napi::Env env, Napi::Object exports);    // embedding.cc
void InitElementwise(Napi::Env env, Napi::Object exports);  // elementwise.cc
void InitSampling(Napi::Env env, Napi::Object exports);     // sampling.cc: whole-vocabulary passes of the sampler
void InitAttention(Napi::Env env, Napi::Object exports);    // attention.cc
void InitPagedAttention(Napi::Env env, Napi::Object exports);  // paged_attention.cc
void InitShiftKeys(Napi::Env env, Napi::Object exports);       // kv_shift_keys.cc: RoPE shift of cached keys
void InitAlignedBuffer(Napi::Env env, Napi::Object exports);   // aligned_buffer.cc: page-aligned KV arrays
void InitHeapRetention(Napi::Env env, Napi::Object exports);   // heap_retention.cc: freed memory kept for tier reads
}  // namespace vserve
