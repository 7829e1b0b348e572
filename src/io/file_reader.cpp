#include "io/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace smoe {

FileReader::FileReader(const std::string& path, bool direct, bool keep_cached)
    : path_(path), keep_cached_(keep_cached) {
  if (direct) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    direct_ = fd_ >= 0;
  }
  if (fd_ < 0) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open '{}' for reading: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail("cannot stat '{}': {}", path, std::strerror(errno));
  size_ = static_cast<uint64_t>(st.st_size);
}

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

void FileReader::read_exact(std::byte* dst, size_t n, uint64_t offset) const {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("cannot read '{}' at byte {}: {}", path_, offset + done, std::strerror(errno));
    if (r == 0) break;  // end of file: only the aligned tail of a direct read ends here
    done += static_cast<size_t>(r);
  }
  if (offset + done < std::min<uint64_t>(offset + n, size_))
    fail("cannot read '{}': unexpected end of file at byte {}", path_, offset + done);
}

std::byte* FileReader::read_span(uint64_t offset, size_t size, std::byte* buf) const {
  if (offset > size_ || size > size_ - offset)
    fail("cannot read '{}': bytes {}..{} lie beyond its end ({} bytes)", path_, offset,
         offset + size, size_);
  if (!direct_) {
    read_exact(buf, size, offset);
    // The engine keeps these bytes itself: the page cache's copy is not needed again.
    if (!keep_cached_)
      ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(size),
                      POSIX_FADV_DONTNEED);
    return buf;
  }
  const uint64_t begin = offset / kAlign * kAlign;
  const uint64_t end = (offset + size + kAlign - 1) / kAlign * kAlign;
  read_exact(buf, end - begin, begin);  // may stop short only at the end of the file
  return buf + (offset - begin);
}

std::byte* alloc_read_buffer(size_t size) {
  const size_t rounded = (size + FileReader::kAlign - 1) / FileReader::kAlign * FileReader::kAlign;
  void* p = std::aligned_alloc(FileReader::kAlign, rounded);
  if (!p) fail("cannot allocate a read buffer of {} bytes", size);
  return static_cast<std::byte*>(p);
}

}  // namespace smoe
