// Helpers shared by the io tests: temporary folders, whole-file reads and writes, in-memory files,
// capturing smoe::Error messages and building raw GGUF bytes by hand.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/mapped_file.h"

namespace smoe::testing {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A fresh folder under the system temp folder, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("smoe_io_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline Bytes read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void write_all(const std::string& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

inline std::shared_ptr<MappedFile> in_memory(const Bytes& b, const std::string& name = "mem.bin") {
  return MappedFile::from_bytes(name, b.data(), b.size());
}

inline LoadOptions load_options(bool use_mmap, bool mlock) {
  LoadOptions o;
  o.use_mmap = use_mmap;
  o.mlock = mlock;
  return o;
}

// The message of the smoe::Error that f throws, or "" when it returns normally. Any other exception
// escapes and fails the test.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Resident memory of this process in KiB (Linux).
inline long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Resident memory of the one mapping that holds `p`, in KiB (Linux /proc/self/smaps), or -1. Unlike
// rss_kib it leaves out everything else the process touches meanwhile (a sanitizer's shadow memory
// grows by an eighth of whatever is read).
inline long mapping_rss_kib(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {
      inside = at >= lo && at < hi;
      continue;
    }
    if (inside && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

template <typename T>
void put(Bytes& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}

template <typename T>
void poke(Bytes& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Position of the first occurrence of `s` in `b` (npos if absent).
inline size_t find_bytes(const Bytes& b, const std::string& s) {
  for (size_t i = 0; i + s.size() <= b.size(); ++i)
    if (std::memcmp(b.data() + i, s.data(), s.size()) == 0) return i;
  return std::string::npos;
}

// Raw GGUF bytes, field by field, for files the writer would never produce.
struct GgufBytes {
  Bytes b;
  GgufBytes(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, version);
    put<uint64_t>(b, n_tensors);
    put<uint64_t>(b, n_kv);
  }
  GgufBytes& str(const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& u32(uint32_t v) { return put<uint32_t>(b, v), *this; }
  GgufBytes& u64(uint64_t v) { return put<uint64_t>(b, v), *this; }
  GgufBytes& u8(uint8_t v) { return put<uint8_t>(b, v), *this; }
  // key, type, then the caller appends the value.
  GgufBytes& key(const std::string& k, uint32_t type) { return str(k).u32(type); }
  GgufBytes& kv_u32(const std::string& k, uint32_t v) { return key(k, 4).u32(v); }
  // ne innermost first, as stored.
  GgufBytes& tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                    uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  GgufBytes& pad(size_t align) {
    while (b.size() % align) b.push_back(0);
    return *this;
  }
  GgufBytes& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

}  // namespace smoe::testing
