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
  for (int32_t i = 0; i < n; ++i) {
    const std::string& p = pieces[i];
    switch (types[i]) {
      case PieceType::Normal:
      case PieceType::Unused:
        mergeable.emplace(p, i);
        break;
      case PieceType::UserDefined:
        mergeable.emplace(p, i);
        if (!p.empty()) user_defined.push_back(p);
        break;
      case PieceType::Byte: {
        unsigned v = 0;
        if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%2X>", &v) == 1) byte_ids[v] = i;
        break;
      }
      case PieceType::Control:
      case PieceType::Unknown:
        special.emplace(p, i);
        break;
    }
  }
  std::sort(user_defined.begin(), user_defined.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

}  // namespace smoe
