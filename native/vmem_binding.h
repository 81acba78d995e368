// JS binding of the vmem subsystem: exports the VirtualKV class (see vmem_virtual_kv.h).
#pragma once
#include <napi.h>

namespace vserve {
void InitVmem(Napi::Env env, Napi::Object exports);
}
