#include "js_args.h"

#include <cmath>

namespace vserve {

void Args::rangeError(const std::string& message) const {
  throw Napi::RangeError::New(env(), std::string(fn_) + ": " + message);
}

void Args::typeError(const std::string& message) const {
  throw Napi::TypeError::New(env(), std::string(fn_) + ": " + message);
}

Napi::Value Args::at(size_t i, const char* name) const {
  if (i >= info_.Length()) typeError(std::string("missing argument ") + name);
  return info_[i];
}

template <class T>
ArrayArg<T> Args::typed(size_t i, const char* name, napi_typedarray_type type, const char* typeName) const {
  const Napi::Value v = at(i, name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    typeError(std::string(name) + " must be a " + typeName);
  }
  Napi::TypedArrayOf<T> arr = v.As<Napi::TypedArrayOf<T>>();
  return {arr.Data(), arr.ElementLength()};
}

ArrayArg<float> Args::float32(size_t i, const char* name) const {
  return typed<float>(i, name, napi_float32_array, "Float32Array");
}

ArrayArg<int32_t> Args::int32(size_t i, const char* name) const {
  return typed<int32_t>(i, name, napi_int32_array, "Int32Array");
}

ArrayArg<uint8_t> Args::bytes(size_t i, const char* name) const {
  const Napi::Value v = at(i, name);
  if (v.IsTypedArray()) {
    Napi::TypedArray arr = v.As<Napi::TypedArray>();
    uint8_t* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data());
    return {base == nullptr ? nullptr : base + arr.ByteOffset(), arr.ByteLength()};
  }
  if (v.IsArrayBuffer()) {
    Napi::ArrayBuffer buf = v.As<Napi::ArrayBuffer>();
    return {static_cast<uint8_t*>(buf.Data()), buf.ByteLength()};
  }
  typeError(std::string(name) + " must be a TypedArray or ArrayBuffer");
}

double Args::number(size_t i, const char* name) const {
  const Napi::Value v = at(i, name);
  if (!v.IsNumber()) typeError(std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) rangeError(std::string(name) + " must be finite");
  return d;
}

size_t Args::index(size_t i, const char* name, size_t max) const {
  const double d = number(i, name);
  if (d < 0 || d != std::floor(d) || d > double(max)) {
    rangeError(std::string(name) + " must be an integer in [0, " + std::to_string(max) + "], got " +
               std::to_string(d));
  }
  return size_t(d);
}

std::string Args::string(size_t i, const char* name) const {
  const Napi::Value v = at(i, name);
  if (!v.IsString()) typeError(std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object Args::object(size_t i, const char* name) const {
  const Napi::Value v = at(i, name);
  if (!v.IsObject()) typeError(std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

size_t checkedMul(const Args& args, size_t a, size_t b, const char* what) {
  const size_t limit = size_t(1) << 53;
  if (a != 0 && b > limit / a) args.rangeError(std::string(what) + " is too large");
  return a * b;
}

}  // namespace vserve
