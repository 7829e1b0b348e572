#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace smoe {

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, const LoadOptions& opts) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail("cannot stat '{}': {}", path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail("'{}' is a directory, not a file", path);
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ == 0) {
    ::close(fd);
    return f;
  }
  if (opts.use_mmap) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);
    if (p == MAP_FAILED) fail("cannot map '{}': {}", path, std::strerror(e));
    f->data_ = static_cast<const std::byte*>(p);
    f->mmapped_ = true;
  } else {
    void* p = std::aligned_alloc(64, (f->size_ + 63) / 64 * 64);
    if (!p) {
      ::close(fd);
      fail("cannot allocate {} bytes to load '{}'", f->size_, path);
    }
    size_t done = 0;
    while (done < f->size_) {
      const ssize_t r =
          ::pread(fd, static_cast<char*>(p) + done, f->size_ - done, static_cast<off_t>(done));
      if (r <= 0) {
        const int e = errno;
        std::free(p);
        ::close(fd);
        fail("cannot read '{}' (at byte {} of {}): {}", path, done, f->size_,
             r == 0 ? "unexpected end of file" : std::strerror(e));
      }
      done += static_cast<size_t>(r);
      if (opts.progress) opts.progress(done, f->size_);
    }
    ::close(fd);
    f->data_ = static_cast<const std::byte*>(p);
  }
  if (opts.mlock) f->locked_ = ::mlock(f->data_, f->size_) == 0;
  return f;
}

MappedFile::~MappedFile() {
  if (!data_) return;
  if (locked_) ::munlock(data_, size_);
  if (mmapped_)
    ::munmap(const_cast<std::byte*>(data_), size_);
  else
    std::free(const_cast<std::byte*>(data_));
}

}  // namespace smoe
