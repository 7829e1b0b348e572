// MappedFile: mmap and read-into-memory give the same bytes; released pages leave resident memory
// but keep their bytes; empty files, mlock, and the errors for missing files, folders and special
// files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "io/mapped_file.h"
#include "io_test_util.h"

namespace smoe {
namespace {

using namespace smoe::testing;

TEST(MappedFile, MmapAndReadGiveTheSameBytes) {
  TempDir d;
  Bytes b(10000);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 31 + 7);
  write_all(d / "f.bin", b);
  for (bool mmap : {true, false}) {
    for (bool lock : {false, true}) {
      auto f =
          MappedFile::open(d / "f.bin", load_options(mmap, lock));  // mlock failing is not an error
      EXPECT_EQ(f->path(), d / "f.bin");
      EXPECT_EQ(f->is_mmapped(), mmap);
      if (!lock) {
        EXPECT_FALSE(f->is_locked());
      }
      ASSERT_EQ(f->size(), b.size());
      EXPECT_EQ(std::memcmp(f->data(), b.data(), b.size()), 0);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data()) % 64, 0u);
    }
  }
}

TEST(MappedFile, ReleasedPagesLeaveResidentMemoryAndKeepTheirBytes) {
  TempDir d;
  const size_t size = size_t{64} << 20;
  Bytes b(size);
  for (size_t i = 0; i < size; i += 4096) b[i] = static_cast<uint8_t>(i / 4096 * 13 + 1);
  write_all(d / "f.bin", b);
  const auto sum = [&](const MappedFile& f) {
    uint64_t s = 0;
    for (size_t i = 0; i < size; i += 4096) s += std::to_integer<uint8_t>(f.data()[i]);
    return s;
  };
  uint64_t want = 0;
  for (size_t i = 0; i < size; i += 4096) want += b[i];
  Bytes().swap(b);
  {
    auto f = MappedFile::open(d / "f.bin", load_options(true, false));
    EXPECT_EQ(sum(*f), want);  // every page resident
    const long touched = rss_kib();
    f->release_pages(f->data() + 1, size - 2);  // widened to whole pages
    const long released = rss_kib();
    EXPECT_GT(touched - released, 60 * 1024)
        << "resident before " << touched << " KiB, after " << released << " KiB";
    EXPECT_EQ(sum(*f), want);                 // read again from the file
    f->release_pages(f->data() + size, 100);  // outside: nothing
    f->release_pages(nullptr, 0);
  }
  {
    // Bytes read into memory are the only copy: releasing must keep them.
    auto f = MappedFile::open(d / "f.bin", load_options(false, false));
    f->release_pages(f->data(), size);
    EXPECT_EQ(sum(*f), want);
  }
}

// Read forward in blocks whose edges fall anywhere, each released once read: almost nothing stays
// resident. The file is first read with read(), so that the page cache holds it in large folios,
// which the kernel maps whole around a fault: without dropping the 2 MiB behind each block, the
// end of every block came back when the next was read (4.6 MiB left here on Linux 6.18).
TEST(MappedFile, ReleasingBehindAForwardReaderLeavesNothingResident) {
  TempDir d;
  const std::string path = d / "f.bin";
  const size_t size = size_t{64} << 20, block = (size_t{1} << 20) + 12345;
  write_all(path, Bytes(size, 1));
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::fsync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    std::vector<char> buf(size_t{1} << 20);
    while (::read(fd, buf.data(), buf.size()) > 0) {
    }
    ::close(fd);
  }
  auto f = MappedFile::open(path, load_options(true, false));
  const long before = mapping_rss_kib(f->data());
  uint64_t sum = 0;
  for (size_t at = 0; at < size; at += block) {
    const size_t n = std::min(block, size - at);
    for (size_t i = at; i < at + n; i += 4096) sum += std::to_integer<uint8_t>(f->data()[i]);
    sum += std::to_integer<uint8_t>(f->data()[at + n - 1]);
    f->release_pages(f->data() + at, n);
  }
  EXPECT_GT(sum, size / 4096);
  EXPECT_LT(mapping_rss_kib(f->data()) - before, 1024)
      << "KiB still resident after reading and releasing";
}

TEST(MappedFile, ProgressIsReportedWhenReading) {
  TempDir d;
  write_all(d / "f.bin", Bytes(100000, 1));
  std::vector<uint64_t> seen;
  LoadOptions o;
  o.use_mmap = false;
  o.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, 100000u);
    seen.push_back(done);
  };
  MappedFile::open(d / "f.bin", o);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), 100000u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
}

TEST(MappedFile, ReadingInChunksKeepsEveryByte) {
  // Several chunks and a tail shorter than a page: the reads may go around the page cache
  // (O_DIRECT), which moves whole pages; the bytes must still land exactly.
  TempDir d;
  Bytes b(3 * 4096 + 123);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + i / 251);
  write_all(d / "f.bin", b);
  for (size_t chunk : {size_t{4096}, size_t{8192}, size_t{1} << 20, size_t{100}})
    for (bool bypass : {true, false}) {
      std::vector<uint64_t> seen;
      LoadOptions o;
      o.use_mmap = false;
      o.read_chunk = chunk;
      o.bypass_cache = bypass;
      o.progress = [&](uint64_t done, uint64_t) { seen.push_back(done); };
      auto f = MappedFile::open(d / "f.bin", o);
      ASSERT_EQ(f->size(), b.size());
      EXPECT_EQ(std::memcmp(f->data(), b.data(), b.size()), 0)
          << "chunk " << chunk << " " << bypass;
      const size_t step = std::max<size_t>(chunk / 4096, 1) * 4096;
      EXPECT_EQ(seen.size(), (b.size() + step - 1) / step) << "chunk " << chunk;
    }
}

TEST(MappedFile, EmptyFileIsAllowed) {
  TempDir d;
  write_all(d / "empty", {});
  for (bool mmap : {true, false}) {
    auto f = MappedFile::open(d / "empty", load_options(mmap, true));
    EXPECT_EQ(f->size(), 0u);
    EXPECT_EQ(f->data(), nullptr);
  }
  auto m = MappedFile::from_bytes("mem", nullptr, 0);
  EXPECT_EQ(m->size(), 0u);
}

TEST(MappedFile, FromBytesCopies) {
  Bytes b = {1, 2, 3};
  auto f = MappedFile::from_bytes("name", b.data(), b.size());
  b[0] = 9;
  EXPECT_EQ(f->path(), "name");
  EXPECT_FALSE(f->is_mmapped());
  ASSERT_EQ(f->size(), 3u);
  EXPECT_EQ(std::to_integer<int>(f->data()[0]), 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data()) % 64, 0u);
}

TEST(MappedFile, ErrorsNameThePath) {
  TempDir d;
  for (bool mmap : {true, false}) {
    EXPECT_EQ(error_of([&] { MappedFile::open(d / "missing", load_options(mmap, false)); }),
              fmt::format("cannot open '{}': No such file or directory", d / "missing"));
    EXPECT_EQ(error_of([&] { MappedFile::open(d.path.string(), load_options(mmap, false)); }),
              fmt::format("'{}' is a directory, not a file", d.path.string()));
  }
  // A FIFO would block a plain open() until a writer came; it is refused at once.
  ASSERT_EQ(::mkfifo((d / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(error_of([&] { MappedFile::open(d / "fifo"); }),
            fmt::format("'{}' is not a regular file", d / "fifo"));
  if (::geteuid() != 0) {  // root reads anything
    write_all(d / "secret", {1});
    ::chmod((d / "secret").c_str(), 0);
    EXPECT_TRUE(contains(error_of([&] { MappedFile::open(d / "secret"); }), "Permission denied"));
  }
}

}  // namespace
}  // namespace smoe
