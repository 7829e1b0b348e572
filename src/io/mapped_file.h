// A read-only file's bytes: mmap'd (no copy; pages come in as they are touched) or read into
// ordinary memory (--no-mmap), optionally locked in RAM (--mlock). RAII, move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace smoe {

struct LoadOptions {
  bool use_mmap = true;  // false: read the whole file into an allocated buffer
  bool mlock = false;  // lock the pages in RAM (mmap or buffer); failure is a warning, not an error
  // Reading without mmap: called as bytes arrive (done, total). Optional.
  std::function<void(uint64_t, uint64_t)> progress;
  // Reading without mmap: bytes per read (rounded down to a multiple of 4096, at least 4096).
  size_t read_chunk = size_t{64} << 20;
  // Reading without mmap: true reads around the page cache (O_DIRECT where the file system
  // allows, else dropping the cache's pages as they are copied), so that a file larger than half
  // the memory is not held twice, in the page cache and here, evicting itself as it is read;
  // false reads through the cache and leaves it there (a second load of a smaller file comes
  // from memory). Unset: true for files larger than half the physical memory.
  std::optional<bool> bypass_cache;
};

class MappedFile {
 public:
  // Throws smoe::Error naming the path on any failure (missing, a directory, unreadable).
  static std::shared_ptr<MappedFile> open(const std::string& path, const LoadOptions& opts = {});
  // A copy of `size` bytes already in memory (64-byte aligned), e.g. for tests and fuzzing. `name`
  // stands in for the path in error messages.
  static std::shared_ptr<MappedFile> from_bytes(const std::string& name, const void* data,
                                                size_t size);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_mmapped() const { return mmapped_; }
  bool is_locked() const { return locked_; }  // mlock was asked for and succeeded
  bool contains(const std::byte* p) const { return p >= data_ && p < data_ + size_; }

  // For a reader going forward through the file, done with [p, p + n) (a converter reading each
  // tensor once): a mapped file's pages over that range, whole pages widened outwards, leave the
  // process's resident memory and come back from the file if touched again; so do the 2 MiB
  // before p, because the kernel maps cached pages around each page fault (a large folio, a
  // fault-around window: up to 2 MiB), and reading up to p may have mapped again the end of what
  // was released before. The bytes never change. A no-op for bytes read into memory (--no-mmap,
  // from_bytes), for locked pages, and for a range outside this file.
  void release_pages(const std::byte* p, size_t n) const;

 private:
  MappedFile() = default;
  // Reads the whole file (f.size_ > 0) into memory in opts.read_chunk pieces.
  static void read_whole(MappedFile& f, const LoadOptions& opts);
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  bool mmapped_ = false;
  bool locked_ = false;
};

}  // namespace smoe
