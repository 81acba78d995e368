#include "modules.h"

namespace vserve {
void InitModules(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}
}  // namespace vserve
