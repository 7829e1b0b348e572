#include "tokenizer/spm_bpe.h"

#include <algorithm>
#include <queue>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace smoe {
namespace {

struct Symbol {
  int prev, next;
  uint32_t start, len;  // byte range in the normalised text
  bool frozen;          // a user-defined piece: never merged
};

struct Pair {
  float score;
  int left, right;
  uint32_t len;  // joined length when the pair was made (stale if the symbols changed)
};

struct PairOrder {
  bool operator()(const Pair& a, const Pair& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmBpeTokenizer::SpmBpeTokenizer(Vocab v) : v_(std::move(v)) {
  v_.finalize();
}

const std::string& SpmBpeTokenizer::piece(int32_t id) const {
  if (!check_id(id)) fail("token id {} is outside the vocabulary of {}", id, n_vocab());
  return v_.pieces[id];
}
float SpmBpeTokenizer::score(int32_t id) const {
  return check_id(id) ? v_.scores[id] : 0.0f;
}
PieceType SpmBpeTokenizer::type(int32_t id) const {
  return check_id(id) ? v_.types[id] : PieceType::Unknown;
}

std::string SpmBpeTokenizer::normalize(std::string_view text, bool at_start) const {
  std::string s = utf8::sanitize(text);
  if (v_.remove_extra_whitespaces) {
    std::string t;
    for (char c : s)
      if (c != ' ' || (!t.empty() && t.back() != ' ')) t += c;
    while (!t.empty() && t.back() == ' ') t.pop_back();
    s = t;
  }
  if (s.empty()) return s;
  if (v_.add_dummy_prefix && at_start) s.insert(s.begin(), ' ');
  if (!v_.escape_whitespaces) return s;
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  for (char c : s) {
    if (c == ' ')
      out += kSpaceSymbol;
    else
      out += c;
  }
  // SentencePiece trims trailing ▁ after escaping, so a ▁ written in the text goes too.
  if (v_.remove_extra_whitespaces)
    while (out.ends_with(kSpaceSymbol)) out.resize(out.size() - kSpaceSymbol.size());
  return out;
}

void SpmBpeTokenizer::emit_symbol(std::string_view p, const RevMerge& rev,
                                  std::vector<int32_t>& out) const {
  const int32_t id = v_.piece_to_id(p);
  if (id != v_.unk_id && v_.types[id] == PieceType::Unused) {
    // Unused pieces are never emitted: split back into the two symbols that made this one.
    if (auto it = rev.find(p); it != rev.end()) {
      emit_symbol(it->second.first, rev, out);
      emit_symbol(it->second.second, rev, out);
      return;
    }
  }
  if (id == v_.unk_id && v_.byte_fallback) {
    for (unsigned char c : p) out.push_back(v_.byte_ids[c] >= 0 ? v_.byte_ids[c] : v_.unk_id);
    return;
  }
  out.push_back(id);
}

// Length of the user-defined piece at s[i] (longest), or 0.
size_t SpmBpeTokenizer::match_user_defined(std::string_view s, size_t i) const {
  if (!v_.user_defined_first[static_cast<unsigned char>(s[i])]) return 0;
  for (const std::string& u : v_.user_defined)
    if (s.compare(i, u.size(), u) == 0) return u.size();
  return 0;
}

void SpmBpeTokenizer::encode_normalized(std::string_view s, std::vector<int32_t>& out) const {
  std::vector<Symbol> sym;
  sym.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = match_user_defined(s, i);
    const bool frozen = len > 0;
    if (!len) len = std::max<size_t>(1, utf8::valid_char_len(s, i));
    const int k = static_cast<int>(sym.size());
    sym.push_back({k - 1, k + 1, static_cast<uint32_t>(i), static_cast<uint32_t>(len), frozen});
    i += len;
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  // Joined piece → the two symbols it was made of, for unused pieces (as the reference keeps it:
  // the latest pair queued wins).
  RevMerge rev;
  std::priority_queue<Pair, std::vector<Pair>, PairOrder> agenda;
  auto try_pair = [&](int l, int r) {
    if (l < 0 || r < 0 || sym[l].frozen || sym[r].frozen) return;
    const std::string_view joined = s.substr(sym[l].start, sym[l].len + sym[r].len);
    auto it = v_.mergeable.find(joined);
    if (it == v_.mergeable.end()) return;
    agenda.push({v_.scores[it->second], l, r, static_cast<uint32_t>(joined.size())});
    if (v_.has_unused && v_.types[it->second] == PieceType::Unused)
      rev[joined] = {s.substr(sym[l].start, sym[l].len), s.substr(sym[r].start, sym[r].len)};
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i)
    try_pair(static_cast<int>(i), static_cast<int>(i + 1));

  while (!agenda.empty()) {
    const Pair p = agenda.top();
    agenda.pop();
    Symbol& l = sym[p.left];
    // Stale: one side was merged away or grew since the pair was queued.
    if (l.len == 0 || l.next != p.right || sym[p.right].len == 0 ||
        l.len + sym[p.right].len != p.len)
      continue;
    Symbol& r = sym[p.right];
    l.len += r.len;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = p.left;
    r.len = 0;
    try_pair(l.prev, p.left);
    try_pair(p.left, l.next);
  }
  const size_t first_out = out.size();
  for (int i = 0; i >= 0; i = sym[i].next)
    emit_symbol(s.substr(sym[i].start, sym[i].len), rev, out);
  if (!v_.byte_fallback) {
    // Without byte fallback SentencePiece joins a run of unknown characters into one <unk>.
    auto keep = out.begin() + static_cast<std::ptrdiff_t>(first_out);
    auto end = std::unique(keep, out.end(),
                           [&](int32_t a, int32_t b) { return a == v_.unk_id && b == v_.unk_id; });
    out.erase(end, out.end());
  }
}

std::vector<int32_t> SpmBpeTokenizer::encode(std::string_view text, const EncodeOptions& o) const {
  std::vector<int32_t> out;
  if (o.add_bos && v_.bos_id >= 0) out.push_back(v_.bos_id);
  if (!o.parse_special || v_.special_by_length.empty()) {
    encode_normalized(normalize(text, true), out);
    return out;
  }
  // Control pieces written in the text become their ids; the text between is encoded normally.
  size_t seg = 0;
  bool at_start = true;
  for (size_t i = 0; i < text.size();) {
    size_t best = 0;
    int32_t id = -1;
    if (v_.special_first[static_cast<unsigned char>(text[i])])
      for (const auto& [p, pid] : v_.special_by_length)
        if (text.compare(i, p.size(), p) == 0) {
          best = p.size();
          id = pid;
          break;
        }
    if (!best) {
      ++i;
      continue;
    }
    encode_normalized(normalize(text.substr(seg, i - seg), at_start), out);
    out.push_back(id);
    at_start = false;
    i += best;
    seg = i;
  }
  encode_normalized(normalize(text.substr(seg), at_start), out);
  return out;
}

std::string SpmBpeTokenizer::token_bytes(int32_t id, bool render_special) const {
  if (!check_id(id)) return {};
  const std::string& p = v_.pieces[id];
  switch (v_.types[id]) {
    case PieceType::Control:
      return render_special ? p : std::string();
    case PieceType::Unknown:
      return render_special ? p : std::string(" \xE2\x81\x87 ");
    case PieceType::Byte: {
      for (int b = 0; b < 256; ++b)
        if (v_.byte_ids[b] == id) return std::string(1, static_cast<char>(b));
      return {};
    }
    default: {
      std::string out;
      for (size_t i = 0; i < p.size();) {
        if (p.compare(i, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
          out += ' ';
          i += kSpaceSymbol.size();
        } else {
          out += p[i++];
        }
      }
      return out;
    }
  }
}

bool SpmBpeTokenizer::strips_leading_space(int32_t id, const DecodeOptions& o) const {
  // As SentencePiece: the first decoded piece loses the ▁ it starts with, unless it is a byte,
  // control or unknown piece (those are not text pieces).
  if (!o.strip_leading_space || !check_id(id)) return false;
  if (!v_.add_dummy_prefix && !v_.remove_extra_whitespaces) return false;
  const PieceType t = v_.types[id];
  if (t != PieceType::Normal && t != PieceType::UserDefined && t != PieceType::Unused) return false;
  return v_.pieces[id].starts_with(kSpaceSymbol);
}

std::string SpmBpeTokenizer::decode(const std::vector<int32_t>& ids, const DecodeOptions& o) const {
  // Runs of byte pieces are read as UTF-8 on their own (as SentencePiece does): any other piece,
  // a hidden control one included, ends the run, and a character it cut becomes U+FFFD.
  std::string out, bytes;
  bool first = true;
  for (int32_t id : ids) {
    const bool is_byte = check_id(id) && v_.types[id] == PieceType::Byte;
    if (!is_byte && !bytes.empty()) {
      out += utf8::sanitize(bytes);
      bytes.clear();
    }
    std::string b = token_bytes(id, o.render_special);
    if (b.empty()) continue;
    if (first && strips_leading_space(id, o)) b.erase(0, 1);
    if (is_byte)
      bytes += b;
    else
      out += utf8::sanitize(b);  // pieces are valid UTF-8 in any sane vocabulary; stay safe
    // With remove_extra_whitespaces SentencePiece keeps stripping until some text came out.
    first = v_.remove_extra_whitespaces && out.empty() && bytes.empty();
  }
  out += utf8::sanitize(bytes);
  return out;
}

}  // namespace smoe
