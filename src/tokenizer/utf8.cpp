#include "tokenizer/utf8.h"

namespace smoe::utf8 {
namespace {

bool cont(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Expected length from the lead byte and the valid range of the second byte.
bool lead_info(unsigned char c, size_t& len, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (c < 0x80) {
    len = 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

}  // namespace

size_t valid_char_len(std::string_view s, size_t i) {
  size_t len;
  unsigned char lo, hi;
  if (!lead_info(static_cast<unsigned char>(s[i]), len, lo, hi)) return 0;
  if (i + len > s.size()) return 0;
  if (len > 1) {
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return 0;
    for (size_t k = 2; k < len; ++k)
      if (!cont(static_cast<unsigned char>(s[i + k]))) return 0;
  }
  return len;
}

bool is_incomplete_prefix(std::string_view s, size_t i) {
  size_t len;
  unsigned char lo, hi;
  if (!lead_info(static_cast<unsigned char>(s[i]), len, lo, hi)) return false;
  if (i + len <= s.size()) return false;
  for (size_t k = i + 1; k < s.size(); ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    if (k == i + 1 ? (c < lo || c > hi) : !cont(c)) return false;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = valid_char_len(s, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace smoe::utf8
