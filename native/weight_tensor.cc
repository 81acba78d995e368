#include "weight_tensor.h"

#include <memory>
#include <stdexcept>
#include <string>

#include "ggml_types.h"
#include "mapped_file.h"

namespace vserve {
namespace {

const napi_type_tag kModelFileTag = {0x7f3a61c2d9e84b51ULL, 0x9d02c8e4a1f63b07ULL};
const napi_type_tag kWeightTag = {0x2b6e94d1c07f3a85ULL, 0xe41d5a08b9c2f763ULL};

class ModelFile : public Napi::ObjectWrap<ModelFile> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ModelFile",
                       {InstanceMethod<&ModelFile::Close>("close"), InstanceAccessor<&ModelFile::Size>("size"),
                        InstanceAccessor<&ModelFile::Closed>("closed")});
  }

  explicit ModelFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelFile>(info) {
    Args args(info, "new ModelFile");
    const std::string path = args.string(0, "path");
    try {
      store_ = ByteStore::mapFile(path);
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(info.Env(), e.what());
    }
    info.This().As<Napi::Object>().TypeTag(&kModelFileTag);
  }

  const std::shared_ptr<ByteStore>& store() const { return store_; }

 private:
  Napi::Value Close(const Napi::CallbackInfo& info) {
    store_->close();
    return info.Env().Undefined();
  }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(store_->size())); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), store_->closed()); }

  std::shared_ptr<ByteStore> store_;
};

class WeightTensor : public Napi::ObjectWrap<WeightTensor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WeightTensor",
                       {InstanceAccessor<&WeightTensor::Type>("type"), InstanceAccessor<&WeightTensor::Rows>("rows"),
                        InstanceAccessor<&WeightTensor::Cols>("cols"),
                        InstanceAccessor<&WeightTensor::ByteLength>("byteLength")});
  }

  // new WeightTensor(source: ModelFile | Uint8Array, byteOffset, type, rows, cols)
  explicit WeightTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WeightTensor>(info) {
    Args args(info, "new WeightTensor");
    const size_t offset = args.index(1, "byteOffset");
    const int type = int(args.index(2, "type", 1 << 16));
    rows_ = args.index(3, "rows");
    cols_ = args.index(4, "cols");
    const TypeLayout* layout = typeLayout(type);
    if (layout == nullptr) args.typeError("unsupported tensor type " + std::to_string(type));
    if (rows_ == 0 || cols_ == 0) args.rangeError("rows and cols must be positive");
    if (cols_ % size_t(layout->blockSize) != 0) {
      args.rangeError("cols " + std::to_string(cols_) + " is not a multiple of the " + layout->name +
                      " block size " + std::to_string(layout->blockSize));
    }
    type_ = type;
    rowBytes_ = cols_ / size_t(layout->blockSize) * size_t(layout->blockBytes);
    const size_t bytes = checkedMul(args, rows_, rowBytes_, "tensor size");

    const Napi::Value source = info[0];
    if (source.IsObject() && source.As<Napi::Object>().CheckTypeTag(&kModelFileTag)) {
      store_ = ModelFile::Unwrap(source.As<Napi::Object>())->store();
      if (store_->closed()) args.rangeError("the model file is closed");
      if (offset > store_->size() || bytes > store_->size() - offset) {
        args.rangeError("tensor of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                        " lies outside the " + std::to_string(store_->size()) + "-byte file");
      }
      offset_ = offset;
    } else {
      const ArrayArg<uint8_t> src = args.bytes(0, "source");
      if (offset > src.length || bytes > src.length - offset) {
        args.rangeError("tensor of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                        " lies outside the " + std::to_string(src.length) + "-byte source");
      }
      store_ = ByteStore::copyOf(src.data + offset, bytes);
      offset_ = 0;
    }
    info.This().As<Napi::Object>().TypeTag(&kWeightTag);
  }

  WeightRef ref(const Args& args) const {
    if (store_->closed()) args.rangeError("the weight's model file has been closed");
    return {store_->data() + offset_, type_, rows_, cols_, rowBytes_, packed_.get(), store_->mapped()};
  }

 private:
  Napi::Value Type(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), type_); }
  Napi::Value Rows(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(rows_)); }
  Napi::Value Cols(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(cols_)); }
  Napi::Value ByteLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(rows_ * rowBytes_));
  }

  std::shared_ptr<ByteStore> store_;
  std::unique_ptr<PackedCache> packed_ = std::make_unique<PackedCache>();
  size_t offset_ = 0;
  int type_ = 0;
  size_t rows_ = 0;
  size_t cols_ = 0;
  size_t rowBytes_ = 0;
};

}  // namespace

WeightRef weightArg(const Args& args, size_t i, const char* name) {
  const Napi::Object obj = args.object(i, name);
  if (!obj.CheckTypeTag(&kWeightTag)) args.typeError(std::string(name) + " must be a WeightTensor");
  return WeightTensor::Unwrap(obj)->ref(args);
}

void InitTensors(Napi::Env env, Napi::Object exports) {
  exports.Set("ModelFile", ModelFile::Define(env));
  exports.Set("WeightTensor", WeightTensor::Define(env));
}

}  // namespace vserve
