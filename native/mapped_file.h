// Read-only memory mappings of model files, and native-owned aligned byte buffers, behind one type
// so weight views do not care where their bytes live. A mapping can be closed explicitly (to return
// the memory at once); views check that before every use.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace vserve {

class ByteStore {
 public:
  // Maps `path` read-only (MAP_PRIVATE). Throws std::runtime_error with the OS error.
  static std::shared_ptr<ByteStore> mapFile(const std::string& path);
  // A 64-byte-aligned native copy of `bytes`.
  static std::shared_ptr<ByteStore> copyOf(const uint8_t* bytes, size_t size);
  ~ByteStore();
  ByteStore(const ByteStore&) = delete;
  ByteStore& operator=(const ByteStore&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool closed() const { return data_ == nullptr; }
  // True for a file mapping (its pages can be dropped and read back from the file), false for a copy.
  bool mapped() const { return mapped_; }
  // Releases the memory now; later accesses through views throw.
  void close();

 private:
  ByteStore(uint8_t* data, size_t size, bool mapped) : data_(data), size_(size), mapped_(mapped) {}
  uint8_t* data_;
  size_t size_;
  bool mapped_;
};

}  // namespace vserve
