// Hugging Face tokenizer.json and llama2.c tokenizer.bin vocabularies.
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/sp_model.h"

namespace smoe {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open tokenizer '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "<0x0A>" → true
bool is_byte_piece(const std::string& p) {
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::isxdigit(p[3]) &&
         std::isxdigit(p[4]);
}

}  // namespace

Vocab read_hf_tokenizer_json(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  const auto& m = j.value("model", nlohmann::json::object());
  if (m.value("type", "") != "BPE" || !m.contains("vocab") || !m["vocab"].is_object())
    fail("{}: not a BPE tokenizer.json (model.type must be \"BPE\" with a vocab)", path);
  Vocab v;
  v.origin = path;
  v.byte_fallback = m.value("byte_fallback", false);
  const size_t n = m["vocab"].size();
  v.pieces.assign(n, "");
  v.scores.assign(n, 0.0f);
  v.types.assign(n, PieceType::Normal);
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= n) fail("{}: vocab id {} out of range", path, id);
    v.pieces[id] = it.key();
    if (is_byte_piece(it.key())) v.types[id] = PieceType::Byte;
  }
  // A merge of rank r produces a piece that SentencePiece would score -r: earlier merges win.
  if (m.contains("merges") && m["merges"].is_array()) {
    int64_t rank = 0;
    for (const auto& mg : m["merges"]) {
      std::string joined;
      if (mg.is_string()) {
        const std::string s = mg.get<std::string>();
        const size_t sp = s.find(' ');
        joined = sp == std::string::npos ? s : s.substr(0, sp) + s.substr(sp + 1);
      } else if (mg.is_array() && mg.size() == 2) {
        joined = mg[0].get<std::string>() + mg[1].get<std::string>();
      }
      auto id = m["vocab"].find(joined);
      if (id != m["vocab"].end() && v.scores[id->get<int64_t>()] == 0.0f)
        v.scores[id->get<int64_t>()] = -static_cast<float>(++rank);
    }
  }
  for (const auto& t : j.value("added_tokens", nlohmann::json::array())) {
    const int64_t id = t.value("id", int64_t{-1});
    if (id < 0 || static_cast<size_t>(id) >= n) continue;
    v.types[id] = t.value("special", false) ? PieceType::Control : PieceType::UserDefined;
    if (t.value("content", "") == "<unk>") v.types[id] = PieceType::Unknown;
  }
  auto find_id = [&](const char* p) {
    auto it = m["vocab"].find(p);
    return it == m["vocab"].end() ? -1 : static_cast<int32_t>(it->get<int64_t>());
  };
  v.unk_id = find_id("<unk>");
  v.bos_id = find_id("<s>");
  v.eos_id = find_id("</s>");
  if (v.unk_id < 0) v.unk_id = 0;
  v.add_dummy_prefix = true;
  v.remove_extra_whitespaces = false;
  return v;
}

Vocab read_llama2c_tokenizer(const std::string& path) {
  const std::string b = read_file(path);
  size_t i = 0;
  auto need = [&](size_t n) {
    if (b.size() - i < n) fail("{}: truncated llama2.c tokenizer at byte {}", path, i);
  };
  need(4);
  int32_t max_len;
  std::memcpy(&max_len, b.data(), 4);
  i = 4;
  if (max_len <= 0 || max_len > 1024) fail("{}: not a llama2.c tokenizer.bin", path);
  Vocab v;
  v.origin = path;
  while (i < b.size()) {
    need(8);
    float score;
    int32_t len;
    std::memcpy(&score, b.data() + i, 4);
    std::memcpy(&len, b.data() + i + 4, 4);
    i += 8;
    if (len < 0 || len > max_len + 16) fail("{}: piece of length {} at byte {}", path, len, i - 4);
    need(static_cast<size_t>(len));
    std::string p = b.substr(i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
    const int32_t id = static_cast<int32_t>(v.pieces.size());
    PieceType t = PieceType::Normal;
    if (id == 0)
      t = PieceType::Unknown;
    else if (id == 1 || id == 2)
      t = PieceType::Control;
    else if (is_byte_piece(p))
      t = PieceType::Byte;
    std::string escaped;  // llama2.c stores ▁ as a plain space
    for (char c : p) {
      if (c == ' ' && t == PieceType::Normal)
        escaped += "\xE2\x96\x81";
      else
        escaped += c;
    }
    v.pieces.push_back(t == PieceType::Control ? (id == 1 ? "<s>" : "</s>") : escaped);
    v.scores.push_back(score);
    v.types.push_back(t);
  }
  return v;
}

}  // namespace smoe
