// VirtualKV as a JS class. Arguments are checked here (types, integer ranges); the core checks meaning.
// Each (layer, K/V) range is handed to JS as an external ArrayBuffer over the reserved addresses: it keeps
// this object alive, and close() detaches it so that a stale view reads nothing instead of faulting.
#include "vmem_binding.h"

#include <cmath>
#include <string>
#include <vector>

#include "vmem_errors.h"
#include "vmem_virtual_kv.h"

namespace vserve {

namespace {

using vmem::VmemError;
namespace code = vmem::code;

void ThrowJs(Napi::Env env, const char* errorCode, const char* message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, errorCode));
  error.ThrowAsJavaScriptException();
}

// Runs `body`, turning C++ exceptions into JS exceptions that carry a `.code`.
template <typename Body>
Napi::Value Guarded(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const VmemError& e) {
    ThrowJs(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    ThrowJs(env, code::kSystem, "out of memory in the KV cache manager");
  } catch (const std::exception& e) {
    ThrowJs(env, code::kSystem, e.what());
  }
  return env.Undefined();
}

uint64_t ToUint(const Napi::Value& value, const char* name, uint64_t max) {
  double d = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0) || d != std::floor(d) || d > static_cast<double>(max)) {
    throw VmemError(code::kInvalidArgument,
                    std::string(name) + " must be an integer from 0 to " + std::to_string(max));
  }
  return static_cast<uint64_t>(d);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return static_cast<uint32_t>(ToUint(info[i], name, UINT32_MAX));
}

Napi::Int32Array ArgInt32Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw VmemError(code::kInvalidArgument, std::string(name) + " must be an Int32Array");
  }
  return info[i].As<Napi::Int32Array>();
}

uint64_t OptionUint(const Napi::Object& options, const char* name, uint64_t fallback, uint64_t max) {
  Napi::Value v = options.Get(name);
  return v.IsUndefined() ? fallback : ToUint(v, name, max);
}

bool OptionBool(const Napi::Object& options, const char* name, bool fallback) {
  Napi::Value v = options.Get(name);
  return v.IsUndefined() ? fallback : v.ToBoolean().Value();
}

Napi::Object OutcomeToJs(Napi::Env env, const vmem::GrowOutcome& o) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("ok", Napi::Boolean::New(env, o.ok));
  result.Set("pagesNeeded", Napi::Number::New(env, static_cast<double>(o.pagesNeeded)));
  result.Set("pagesAvailable", Napi::Number::New(env, static_cast<double>(o.pagesAvailable)));
  result.Set("pagesMapped", Napi::Number::New(env, static_cast<double>(o.pagesMapped)));
  if (o.mapCountLimited) {
    result.Set("limit", Napi::String::New(env, "mappings"));
    result.Set("reason", Napi::String::New(env, o.refusal));
  } else if (!o.ok) {
    result.Set("limit", Napi::String::New(env, "pages"));
  }
  return result;
}

class VirtualKVWrap : public Napi::ObjectWrap<VirtualKVWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "VirtualKV",
                       {
                           InstanceMethod<&VirtualKVWrap::ReservePhysical>("reservePhysical"),
                           InstanceMethod<&VirtualKVWrap::AllocSlot>("allocSlot"),
                           InstanceMethod<&VirtualKVWrap::FreeSlot>("freeSlot"),
                           InstanceMethod<&VirtualKVWrap::Step>("step"),
                           InstanceMethod<&VirtualKVWrap::StepAsync>("stepAsync"),
                           InstanceMethod<&VirtualKVWrap::Wait>("wait"),
                           InstanceMethod<&VirtualKVWrap::Share>("share"),
                           InstanceMethod<&VirtualKVWrap::Compact>("compact"),
                           InstanceMethod<&VirtualKVWrap::Trim>("trim"),
                           InstanceMethod<&VirtualKVWrap::PagesNeeded>("pagesNeeded"),
                           InstanceMethod<&VirtualKVWrap::FreePages>("freePages"),
                           InstanceMethod<&VirtualKVWrap::ReclaimablePages>("reclaimablePages"),
                           InstanceMethod<&VirtualKVWrap::SlotTokens>("slotTokens"),
                           InstanceMethod<&VirtualKVWrap::Buffer>("buffer"),
                           InstanceMethod<&VirtualKVWrap::Layout>("layout"),
                           InstanceMethod<&VirtualKVWrap::Stats>("stats"),
                           InstanceMethod<&VirtualKVWrap::SlotPages>("slotPages"),
                           InstanceMethod<&VirtualKVWrap::RefCounts>("refCounts"),
                           InstanceMethod<&VirtualKVWrap::RetainGroup>("retainGroup"),
                           InstanceMethod<&VirtualKVWrap::MapGroups>("mapGroups"),
                           InstanceMethod<&VirtualKVWrap::ReleaseGroup>("releaseGroup"),
                           InstanceMethod<&VirtualKVWrap::Close>("close"),
                       });
  }

  explicit VirtualKVWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VirtualKVWrap>(info) {
    Guarded(info.Env(), [&]() -> Napi::Value {
      if (!info[0].IsObject()) throw VmemError(code::kInvalidArgument, "VirtualKV needs an options object");
      Napi::Object o = info[0].As<Napi::Object>();
      vmem::VirtualKVOptions options;
      options.shape.layers = static_cast<uint32_t>(OptionUint(o, "layers", 0, UINT32_MAX));
      options.shape.kvHeads = static_cast<uint32_t>(OptionUint(o, "kvHeads", 0, UINT32_MAX));
      options.shape.headDim = static_cast<uint32_t>(OptionUint(o, "headDim", 0, UINT32_MAX));
      options.shape.tokenBytes = static_cast<uint32_t>(OptionUint(o, "tokenBytes", 0, UINT32_MAX));
      options.shape.rowGroup = static_cast<uint32_t>(OptionUint(o, "rowGroup", 1, UINT32_MAX));
      options.shape.keyHeadBytes = static_cast<uint32_t>(OptionUint(o, "keyHeadBytes", 0, UINT32_MAX));
      options.shape.valueHeadBytes = static_cast<uint32_t>(OptionUint(o, "valueHeadBytes", 0, UINT32_MAX));
      options.shape.maxSlots = static_cast<uint32_t>(OptionUint(o, "maxSlots", 0, UINT32_MAX));
      options.shape.maxContext = static_cast<uint32_t>(OptionUint(o, "maxContext", 0, UINT32_MAX));
      options.pageBytes = OptionUint(o, "pageSize", 64 * 1024, UINT32_MAX);
      options.budgetBytes = OptionUint(o, "budgetBytes", 0, uint64_t{1} << 52);
      options.deferredReclaim = OptionBool(o, "deferredReclaim", true);
      options.trimOnFree = OptionBool(o, "trimOnFree", false);
      kv_ = std::make_unique<vmem::VirtualKV>(options);
      buffers_.resize(kv_->geometry().ranges());
      return info.Env().Undefined();
    });
  }

 private:
  vmem::VirtualKV& kv() {
    if (!kv_) throw VmemError(code::kClosed, "the KV cache manager was not constructed");
    kv_->CheckOpen();
    return *kv_;
  }

  Napi::Value ReservePhysical(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      kv().ReservePhysical(ToUint(info[0], "bytes", uint64_t{1} << 52));
      return info.Env().Undefined();
    });
  }

  Napi::Value AllocSlot(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), kv().AllocSlot()); });
  }

  Napi::Value FreeSlot(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      kv().FreeSlot(ArgU32(info, 0, "slot"));
      return info.Env().Undefined();
    });
  }

  Napi::Value RunStep(const Napi::CallbackInfo& info, bool async) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Int32Array lens = ArgInt32Array(info, 0, "seqLens");
      return OutcomeToJs(info.Env(), kv().Step(lens.Data(), lens.ElementLength(), async));
    });
  }
  Napi::Value Step(const Napi::CallbackInfo& info) { return RunStep(info, false); }
  Napi::Value StepAsync(const Napi::CallbackInfo& info) { return RunStep(info, true); }

  Napi::Value Wait(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      kv().Wait();
      return info.Env().Undefined();
    });
  }

  Napi::Value Share(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return OutcomeToJs(info.Env(),
                         kv().Share(ArgU32(info, 0, "src"), ArgU32(info, 1, "dst"), ArgU32(info, 2, "tokens")));
    });
  }

  Napi::Value Compact(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      uint32_t slot = ArgU32(info, 0, "slot");
      Napi::Int32Array keep = ArgInt32Array(info, 1, "keep");
      uint32_t kept = ArgU32(info, 2, "kept");
      return OutcomeToJs(info.Env(), kv().Compact(slot, keep.Data(), keep.ElementLength(), kept));
    });
  }

  Napi::Value RetainGroup(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), kv().RetainGroup(ArgU32(info, 0, "slot"), ArgU32(info, 1, "block")));
    });
  }

  Napi::Value MapGroups(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      uint32_t slot = ArgU32(info, 0, "slot");
      if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
        throw VmemError(code::kInvalidArgument, "groups must be a Uint32Array");
      }
      Napi::Uint32Array groups = info[1].As<Napi::Uint32Array>();
      return OutcomeToJs(info.Env(), kv().MapGroups(slot, groups.Data(), groups.ElementLength()));
    });
  }

  Napi::Value ReleaseGroup(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(kv().ReleaseGroup(ArgU32(info, 0, "group"))));
    });
  }

  Napi::Value Trim(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(kv().Trim()));
    });
  }

  Napi::Value PagesNeeded(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      uint32_t slot = ArgU32(info, 0, "slot");
      uint32_t tokens = ArgU32(info, 1, "tokens");
      kv().CheckSlot(slot);
      return Napi::Number::New(info.Env(), static_cast<double>(kv().PagesNeeded(slot, tokens)));
    });
  }

  Napi::Value FreePages(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), kv().pool().freeCount());
    });
  }

  Napi::Value ReclaimablePages(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(kv().ReclaimablePages()));
    });
  }

  Napi::Value SlotTokens(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      uint32_t slot = ArgU32(info, 0, "slot");
      kv().CheckSlot(slot);
      return Napi::Number::New(info.Env(), kv().TokensOf(slot));
    });
  }

  uint32_t ArgRange(const Napi::CallbackInfo& info, size_t i) {
    uint32_t range = ArgU32(info, i, "range");
    if (range >= kv().geometry().ranges()) {
      throw VmemError(code::kInvalidArgument, "range must be below layers x 2 = " +
                                                  std::to_string(kv().geometry().ranges()));
    }
    return range;
  }

  // The reserved addresses of one (layer, K/V) range as an external ArrayBuffer (same object while alive).
  Napi::Value Buffer(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      uint32_t range = ArgRange(info, 0);
      Napi::Reference<Napi::ArrayBuffer>& cached = buffers_[range];
      if (!cached.IsEmpty() && !cached.Value().IsEmpty()) return cached.Value();
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(info.Env(), kv().RangeBase(range),
                                                        kv().geometry().rangeBytes(), [](Napi::Env, void*) {});
      // The buffer keeps this object (and so the reservation) alive; this object only holds it weakly.
      buffer.DefineProperty(Napi::PropertyDescriptor::Value("owner", Value(), napi_default));
      cached = Napi::Reference<Napi::ArrayBuffer>::New(buffer, 0);
      return buffer;
    });
  }

  Napi::Value Layout(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      const vmem::KVGeometry& g = kv().geometry();
      Napi::Env env = info.Env();
      Napi::Object o = Napi::Object::New(env);
      o.Set("pageSize", Napi::Number::New(env, static_cast<double>(g.pageBytes())));
      o.Set("tokenBytes", Napi::Number::New(env, static_cast<double>(g.tokenBytes())));
      o.Set("rowsPerPage", Napi::Number::New(env, g.rowsPerPage()));
      o.Set("paddedContext", Napi::Number::New(env, g.paddedContext()));
      o.Set("slotBytes", Napi::Number::New(env, static_cast<double>(g.slotBytes())));
      o.Set("rangeBytes", Napi::Number::New(env, static_cast<double>(g.rangeBytes())));
      o.Set("pagesPerSlot", Napi::Number::New(env, g.pagesPerSlot()));
      o.Set("ranges", Napi::Number::New(env, g.ranges()));
      o.Set("baseAddress", Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(kv().RangeBase(0)))));
      o.Set("poolPages", Napi::Number::New(env, kv().pool().pageCount()));
      o.Set("blockTokens", Napi::Number::New(env, kv().blockTokens()));
      o.Set("blockPages", Napi::Number::New(env, kv().blockPages()));
      return o;
    });
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      vmem::VirtualKV& k = kv();
      const vmem::PagePool& pool = k.pool();
      uint32_t slots = k.geometry().shape().maxSlots;
      Napi::Uint8Array states = Napi::Uint8Array::New(env, slots);
      Napi::Uint32Array tokens = Napi::Uint32Array::New(env, slots);
      Napi::Float64Array pages = Napi::Float64Array::New(env, slots);
      Napi::Float64Array slotShared = Napi::Float64Array::New(env, slots);
      uint64_t mappings = 0, idlePages = 0, sharedPages = 0;
      // How many slots map each pool page: a page is shared when more than one does (a reference the
      // prefix cache holds is not a mapping). One pass over the page tables, so stats stay cheap to poll.
      std::vector<uint32_t> mappedBy(pool.pageCount(), 0);
      for (uint32_t s = 0; s < slots; s++) {
        for (uint32_t r = 0; r < k.geometry().ranges(); r++) {
          for (uint32_t p : k.PagesOf(s, r)) mappedBy[p]++;
        }
      }
      for (uint32_t s = 0; s < slots; s++) {
        states[s] = static_cast<uint8_t>(k.StateOf(s));
        tokens[s] = k.TokensOf(s);
        pages[s] = static_cast<double>(k.MappedPagesOf(s));
        mappings += k.MappedPagesOf(s);
        if (k.StateOf(s) == vmem::SlotState::kIdle) idlePages += k.MappedPagesOf(s);
        uint64_t shared = 0;
        for (uint32_t r = 0; r < k.geometry().ranges(); r++) {
          for (uint32_t p : k.PagesOf(s, r)) shared += mappedBy[p] > 1 ? 1 : 0;
        }
        slotShared[s] = static_cast<double>(shared);
      }
      for (uint32_t count : mappedBy) sharedPages += count > 1 ? 1 : 0;
      const vmem::VirtualKVCounters& c = k.counters();
      Napi::Object o = Napi::Object::New(env);
      auto set = [&](const char* name, double v) { o.Set(name, Napi::Number::New(env, v)); };
      set("pageSize", static_cast<double>(pool.pageBytes()));
      set("totalPages", pool.pageCount());
      set("freePages", pool.freeCount());
      set("usedPages", pool.pageCount() - pool.freeCount());
      set("sharedPages", static_cast<double>(sharedPages));
      set("cacheGroups", k.LiveGroups());
      set("idlePages", static_cast<double>(idlePages));
      set("mappings", static_cast<double>(mappings));
      set("reclaimablePages", static_cast<double>(k.ReclaimablePages()));
      set("allocatedBytes", static_cast<double>(pool.AllocatedBytes()));
      set("mapCalls", static_cast<double>(c.mapCalls));
      set("mapNs", static_cast<double>(c.mapNs));
      set("unmapCalls", static_cast<double>(c.unmapCalls));
      set("unmapNs", static_cast<double>(c.unmapNs));
      set("pagesMappedTotal", static_cast<double>(c.pagesMapped));
      set("pagesUnmappedTotal", static_cast<double>(c.pagesUnmapped));
      set("pagesReclaimedTotal", static_cast<double>(c.pagesReclaimed));
      o.Set("slotStates", states);
      o.Set("slotTokens", tokens);
      o.Set("slotPages", pages);
      o.Set("slotSharedPages", slotShared);
      return o;
    });
  }

  Napi::Value SlotPages(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      uint32_t slot = ArgU32(info, 0, "slot");
      uint32_t range = ArgRange(info, 1);
      kv().CheckSlot(slot);
      const std::vector<uint32_t>& pages = kv().PagesOf(slot, range);
      Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), pages.size());
      for (size_t i = 0; i < pages.size(); i++) out[i] = pages[i];
      return out;
    });
  }

  Napi::Value RefCounts(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      const vmem::PagePool& pool = kv().pool();
      Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), pool.pageCount());
      for (uint32_t p = 0; p < pool.pageCount(); p++) out[p] = pool.RefCount(p);
      return out;
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      if (!kv_ || kv_->closed()) return info.Env().Undefined();
      // Views over the ranges must stop working before the addresses are released.
      for (Napi::Reference<Napi::ArrayBuffer>& cached : buffers_) {
        if (cached.IsEmpty()) continue;
        Napi::ArrayBuffer buffer = cached.Value();
        if (!buffer.IsEmpty() && !buffer.IsDetached()) buffer.Detach();
        cached.Reset();
      }
      kv_->Close();
      return info.Env().Undefined();
    });
  }

  std::unique_ptr<vmem::VirtualKV> kv_;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> buffers_;
};

}  // namespace

void InitVmem(Napi::Env env, Napi::Object exports) { exports.Set("VirtualKV", VirtualKVWrap::Define(env)); }

}  // namespace vserve
