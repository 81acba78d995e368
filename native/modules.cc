#include "modules.h"

#include "vmem_binding.h"

namespace vserve {
void InitModules(Napi::Env env, Napi::Object exports) {
  InitVmem(env, exports);
}
}  // namespace vserve
