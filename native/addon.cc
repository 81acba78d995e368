// Entry point of the vserve native addon. Each subsystem (kernels, thread pool, vmem) exposes an
// Init function that adds its exports; this file only wires them together.
#include <napi.h>

#include "modules.h"

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 8));
  vserve::InitModules(env, exports);
  return exports;
}

NODE_API_MODULE(vserve_native, InitAll)
