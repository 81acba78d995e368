// Registration of the addon's subsystems. Add a subsystem by declaring its Init function here and
// calling it from InitModules in modules.cc.
#pragma once
#include <napi.h>

namespace vserve {
void InitModules(Napi::Env env, Napi::Object exports);
}
