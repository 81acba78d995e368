// Checked access to the arguments JS passes to native entry points. Every accessor throws a JS
// exception (TypeError / RangeError) naming the function and argument instead of trusting the caller.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vserve {

template <class T>
struct ArrayArg {
  T* data;
  size_t length;
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env env() const { return info_.Env(); }
  // Whether argument i was passed (and is not undefined): for optional trailing arguments.
  bool given(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined(); }
  ArrayArg<float> float32(size_t i, const char* name) const;
  ArrayArg<int32_t> int32(size_t i, const char* name) const;
  ArrayArg<uint8_t> bytes(size_t i, const char* name) const;  // any TypedArray/ArrayBuffer view as bytes
  // A non-negative integer no larger than `max`.
  size_t index(size_t i, const char* name, size_t max = (size_t(1) << 53)) const;
  double number(size_t i, const char* name) const;
  std::string string(size_t i, const char* name) const;
  Napi::Object object(size_t i, const char* name) const;

  [[noreturn]] void rangeError(const std::string& message) const;
  [[noreturn]] void typeError(const std::string& message) const;
  // Throws a RangeError when the first aLen elements of a and bLen elements of b share memory.
  template <class T>
  void requireDisjoint(const ArrayArg<T>& a, size_t aLen, const ArrayArg<T>& b, size_t bLen, const char* what) const {
    if (a.data < b.data + bLen && b.data < a.data + aLen) rangeError(std::string(what) + " must not share memory");
  }
  // Throws a RangeError unless arr has at least `need` elements.
  template <class T>
  void requireLength(const ArrayArg<T>& arr, size_t need, const char* name) const {
    if (arr.length < need) {
      rangeError(std::string(name) + " has " + std::to_string(arr.length) + " elements, needs at least " +
                 std::to_string(need));
    }
  }

 private:
  Napi::Value at(size_t i, const char* name) const;
  template <class T>
  ArrayArg<T> typed(size_t i, const char* name, napi_typedarray_type type, const char* typeName) const;

  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// Multiplies sizes, throwing a RangeError on overflow past 2^53 (a JS number's exact range).
size_t checkedMul(const Args& args, size_t a, size_t b, const char* what);

}  // namespace vserve
