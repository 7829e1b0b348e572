#include "tokenizer/vocab.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace smoe {

void Vocab::finalize() {
  const int32_t n = static_cast<int32_t>(pieces.size());
  if (n == 0) fail("{}: the vocabulary is empty", origin);
  if (static_cast<int32_t>(scores.size()) != n || static_cast<int32_t>(types.size()) != n)
    fail("{}: {} pieces but {} scores and {} types", origin, n, scores.size(), types.size());
  for (int32_t id : {unk_id, bos_id, eos_id})
    if (id >= n) fail("{}: special token id {} is outside the vocabulary of {}", origin, id, n);
  mergeable.clear();
  special.clear();
  user_defined.clear();
  std::fill(std::begin(byte_ids), std::end(byte_ids), -1);
  std::fill(std::begin(user_defined_first), std::end(user_defined_first), false);
  std::fill(std::begin(special_first), std::end(special_first), false);
  has_unused = false;
  special_by_length.clear();
  reserved.clear();
  for (int32_t i = 0; i < n; ++i) {
    const std::string& p = pieces[i];
    switch (types[i]) {
      case PieceType::Normal:
      case PieceType::Unused:
        has_unused |= types[i] == PieceType::Unused;
        mergeable.emplace(p, i);  // a repeated piece keeps its first id
        break;
      case PieceType::UserDefined:
        mergeable.emplace(p, i);  // a repeated piece keeps its first id
        if (!p.empty()) {
          user_defined.push_back(p);
          user_defined_first[static_cast<unsigned char>(p[0])] = true;
        }
        break;
      case PieceType::Byte: {
        unsigned v = 0;
        if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%2X>", &v) == 1) byte_ids[v] = i;
        reserved.emplace(p, i);
        break;
      }
      case PieceType::Control:
      case PieceType::Unknown:
        special.emplace(p, i);
        reserved.emplace(p, i);
        if (!p.empty()) {
          special_by_length.emplace_back(p, i);
          special_first[static_cast<unsigned char>(p[0])] = true;
        }
        break;
    }
  }
  std::stable_sort(user_defined.begin(), user_defined.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::stable_sort(special_by_length.begin(), special_by_length.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

int32_t Vocab::piece_to_id(std::string_view p) const {
  if (auto it = reserved.find(p); it != reserved.end()) return it->second;
  if (auto it = mergeable.find(p); it != mergeable.end()) return it->second;
  return unk_id;
}

}  // namespace smoe
