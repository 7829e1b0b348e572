// Bounds-checked little-endian reading of a byte range; every failure names the file and offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"

namespace smoe {

class ByteReader {
 public:
  ByteReader(const std::byte* data, size_t size, std::string file)
      : data_(data), size_(size), file_(std::move(file)) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& file() const { return file_; }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A length-prefixed (u64) string; the length is checked against the bytes left first.
  std::string read_string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    if (n > remaining())
      fail("{}: {} at byte {} claims {} bytes but only {} remain (truncated or corrupt file)",
           file_, what, pos_ - 8, n, remaining());
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

  void need(size_t n, const char* what) const {
    if (n > remaining())
      fail("{}: truncated file: reading {} at byte {} needs {} bytes, {} remain", file_, what, pos_,
           n, remaining());
  }

 private:
  const std::byte* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string file_;
};

}  // namespace smoe
