// Positioned reads of a file into memory the caller owns, bypassing the page cache where the
// file system allows it (O_DIRECT), so that what stays in memory is the engine's choice and not
// the kernel's read-ahead. Where O_DIRECT is refused (tmpfs, some network file systems) it reads
// through the page cache and tells the kernel the pages are not needed again. Thread-safe: reads
// of one reader may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace smoe {

class FileReader {
 public:
  // Alignment of buffers, offsets and lengths that direct reads need.
  static constexpr size_t kAlign = 4096;

  // Throws smoe::Error naming the path when it cannot be opened. `direct`: try O_DIRECT.
  // `keep_cached`: reads through the page cache leave its pages there (by default they are
  // dropped as read, since the caller keeps the bytes).
  explicit FileReader(const std::string& path, bool direct = true, bool keep_cached = false);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // The bytes a span of `size` bytes needs in a buffer given to read_span.
  static size_t span_capacity(size_t size) { return size + 2 * kAlign; }

  // Reads bytes [offset, offset + size) of the file into `buf` (kAlign-aligned, of at least
  // span_capacity(size) bytes) and returns where they start in it. Throws smoe::Error on a
  // short read or an I/O error.
  std::byte* read_span(uint64_t offset, size_t size, std::byte* buf) const;

  bool direct() const { return direct_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void read_exact(std::byte* dst, size_t n, uint64_t offset) const;

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool direct_ = false;
  bool keep_cached_ = false;
};

// Allocates `size` bytes aligned to FileReader::kAlign; the memory is untouched until written.
// Free with std::free. Throws smoe::Error when the allocation fails.
std::byte* alloc_read_buffer(size_t size);

}  // namespace smoe
