#include "modules.h"

#include "vmem_binding.h"

namespace vserve {
void InitModules(Napi::Env env, Napi::Object exports) {
  InitRuntime(env, exports);
  InitPeakCompute(env, exports);
  InitTensors(env, exports);
  InitMatmul(env, exports);
  InitEmbedding(env, exports);
  InitElementwise(env, exports);
  InitSampling(env, exports);
  InitAttention(env, exports);
  InitPagedAttention(env, exports);
  InitShiftKeys(env, exports);
  InitAlignedBuffer(env, exports);
  InitHeapRetention(env, exports);
  InitVmem(env, exports);
}
}  // namespace vserve
