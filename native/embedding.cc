// Row lookups and whole-tensor dequantization: embed(out, ids, table) and toFloat32(weight).
#include <string>

#include "dequantize.h"
#include "js_args.h"
#include "modules.h"
#include "thread_pool.h"
#include "weight_tensor.h"

namespace vserve {
namespace {

Napi::Value Embed(const Napi::CallbackInfo& info) {
  Args args(info, "embed");
  const ArrayArg<float> out = args.float32(0, "out");
  const ArrayArg<int32_t> ids = args.int32(1, "ids");
  const WeightRef table = weightArg(args, 2, "table");
  args.requireLength(out, checkedMul(args, ids.length, table.cols, "out size"), "out");
  for (size_t i = 0; i < ids.length; i++) {
    if (ids.data[i] < 0 || size_t(ids.data[i]) >= table.rows) {
      args.rangeError("ids[" + std::to_string(i) + "] = " + std::to_string(ids.data[i]) + " is outside the table's " +
                      std::to_string(table.rows) + " rows");
    }
  }
  for (size_t i = 0; i < ids.length; i++) {
    dequantizeRow(table.type, table.data + size_t(ids.data[i]) * table.rowBytes, out.data + i * table.cols, table.cols);
  }
  return info.Env().Undefined();
}

Napi::Value ToFloat32(const Napi::CallbackInfo& info) {
  Args args(info, "toFloat32");
  const WeightRef w = weightArg(args, 0, "weight");
  Napi::Float32Array result = Napi::Float32Array::New(info.Env(), checkedMul(args, w.rows, w.cols, "tensor size"));
  float* dst = result.Data();
  constexpr size_t kRowsPerTask = 64;
  pool().parallelFor((w.rows + kRowsPerTask - 1) / kRowsPerTask, [&](size_t t) {
    for (size_t r = t * kRowsPerTask; r < w.rows && r < (t + 1) * kRowsPerTask; r++) {
      dequantizeRow(w.type, w.data + r * w.rowBytes, dst + r * w.cols, w.cols);
    }
  });
  return result;
}

}  // namespace

void InitEmbedding(Napi::Env env, Napi::Object exports) {
  exports.Set("embed", Napi::Function::New(env, Embed, "embed"));
  exports.Set("toFloat32", Napi::Function::New(env, ToFloat32, "toFloat32"));
}

}  // namespace vserve
