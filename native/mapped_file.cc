#include "mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace vserve {

std::shared_ptr<ByteStore> ByteStore::mapFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error("cannot stat " + path + ": " + std::strerror(err));
  }
  const size_t size = size_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw std::runtime_error("cannot map " + path + ": the file is empty");
  }
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) throw std::runtime_error("cannot map " + path + ": " + std::strerror(err));
  return std::shared_ptr<ByteStore>(new ByteStore(static_cast<uint8_t*>(p), size, true));
}

std::shared_ptr<ByteStore> ByteStore::copyOf(const uint8_t* bytes, size_t size) {
  const size_t rounded = (size + 63) & ~size_t(63);
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (p == nullptr) throw std::bad_alloc();
  if (size > 0) std::memcpy(p, bytes, size);
  return std::shared_ptr<ByteStore>(new ByteStore(static_cast<uint8_t*>(p), size, false));
}

void ByteStore::close() {
  if (data_ == nullptr) return;
  if (mapped_) {
    munmap(data_, size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
}

ByteStore::~ByteStore() { close(); }

}  // namespace vserve
