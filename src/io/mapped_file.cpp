#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "io/file_reader.h"

namespace smoe {
namespace {

// Closes the descriptor on every path out of open().
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// A 64-byte aligned buffer of at least `size` bytes (size > 0).
std::byte* alloc_aligned(size_t size, const std::string& what) {
  void* p = std::aligned_alloc(64, (size + 63) / 64 * 64);
  if (!p) fail("cannot allocate {} bytes to load '{}'", size, what);
  return static_cast<std::byte*>(p);
}

}  // namespace

void MappedFile::read_whole(MappedFile& f, const LoadOptions& opts) {
  const uint64_t memory = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                          static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const bool bypass = opts.bypass_cache.value_or(f.size_ > memory / 2);
  const FileReader reader(f.path_, bypass, !bypass);
  if (reader.size() != f.size_) fail("'{}' changed size while it was opened", f.path_);
  const size_t chunk =
      std::max(opts.read_chunk / FileReader::kAlign, size_t{1}) * FileReader::kAlign;
  std::byte* p = alloc_read_buffer(FileReader::span_capacity(f.size_));
  f.data_ = p;  // owned from here on: the destructor frees it if reading fails
  for (size_t done = 0; done < f.size_;) {
    const size_t n = std::min(chunk, f.size_ - done);
    // done is a multiple of kAlign: the bytes land where they belong (a direct read of the last
    // piece may run past the end of the file into the buffer's slack).
    reader.read_span(done, n, p + done);
    done += n;
    if (opts.progress) opts.progress(done, f.size_);
  }
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path, const LoadOptions& opts) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is rejected below).
  Fd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (fd.fd < 0) fail("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail("cannot stat '{}': {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("'{}' is a directory, not a file", path);
  if (!S_ISREG(st.st_mode)) fail("'{}' is not a regular file", path);
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ == 0) return f;  // empty: data() stays nullptr
  if (opts.use_mmap) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd.fd, 0);
    if (p == MAP_FAILED) fail("cannot map '{}': {}", path, std::strerror(errno));
    f->data_ = static_cast<const std::byte*>(p);
    f->mmapped_ = true;
  } else {
    read_whole(*f, opts);
  }
  // Locking is best effort (RLIMIT_MEMLOCK is often small): without it the pages may be evicted.
  if (opts.mlock) f->locked_ = ::mlock(f->data_, f->size_) == 0;
  return f;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(const std::string& name, const void* data,
                                                   size_t size) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = name;
  f->size_ = size;
  if (size == 0) return f;
  std::byte* p = alloc_aligned(size, name);
  std::memcpy(p, data, size);
  f->data_ = p;
  return f;
}

void MappedFile::release_pages(const std::byte* p, size_t n) const {
  if (!mmapped_ || locked_ || n == 0) return;
  constexpr uintptr_t kBehind = uintptr_t{2} << 20;  // what a fault may map again behind p
  const auto base = reinterpret_cast<uintptr_t>(data_), at = reinterpret_cast<uintptr_t>(p);
  if (at >= base + size_ || at + n <= base) return;
  const uintptr_t begin = at > base + kBehind ? at - kBehind : base;
  const uintptr_t end = std::min(at + n, base + size_);
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = begin / page * page, last = (end + page - 1) / page * page;
  // The mapping is read-only and private: dropping its pages loses nothing. Only a hint, so a
  // failure changes nothing but the memory the process holds.
  ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
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
