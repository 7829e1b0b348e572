// Small UTF-8 helpers for the tokenizer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smoe::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at s[i], or 0 when the bytes there are not one (bad lead
// byte, bad continuation, overlong, surrogate, beyond U+10FFFF, or cut off by the end).
size_t valid_char_len(std::string_view s, size_t i);

// Could s[i..] still become a valid sequence if more bytes followed? (for streaming)
bool is_incomplete_prefix(std::string_view s, size_t i);

// Replaces every byte that is not part of a valid sequence with U+FFFD.
std::string sanitize(std::string_view s);

}  // namespace smoe::utf8
