#include "tokenizer/bpe_tokenizer.h"

#include "common/error.h"
#include "common/strings.h"
#include "io/json_file.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/text_steps.h"

#ifdef HYFT_HAVE_PCRE2
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <mutex>
#include <queue>
#include <unordered_map>

namespace hyft::tokenizer {

namespace {

// ------------------------------------------------------------ UTF-8 ----------

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

// Bytes of the UTF-8 character that starts with `lead`.
size_t char_bytes(char lead) {
  const unsigned char c = static_cast<unsigned char>(lead);
  return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : 4;
}

// The characters of valid UTF-8 text, each as its bytes.
std::vector<std::string> characters(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size(); i += char_bytes(s[i])) out.push_back(s.substr(i, char_bytes(s[i])));
  return out;
}

// GPT-2's reversible map of bytes to printable characters (ByteLevel).
struct ByteMap {
  std::string to_char[256];
  std::unordered_map<std::string, uint8_t> to_byte;
  ByteMap() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_char[b] = utf8(printable ? uint32_t(b) : uint32_t(256 + extra++));
      to_byte[to_char[b]] = uint8_t(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// ------------------------------------------------------------ regex ----------

#ifdef HYFT_HAVE_PCRE2
// A compiled Unicode regex (PCRE2, UTF + UCP, JIT when available).
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                          &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      fail(where, ": the regex ", pattern, " does not compile (", reinterpret_cast<char*>(message), " at ", offset,
           ")");
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // without JIT it still matches, slower
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every non-overlapping match in `s`, as (begin, end) byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& s) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    size_t at = 0;
    while (at <= s.size()) {
      // The text was checked as UTF-8 once (encode_with_ends); PCRE2 would check the
      // whole subject again on every call.
      const int rc =
          pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), at, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t b = ov[0], e = ov[1];
      if (e > b) out.emplace_back(b, e);
      if (e > at) at = e;
      else {  // an empty match: step over one character
        if (at >= s.size()) break;
        at += char_bytes(s[at]);
      }
    }
    pcre2_match_data_free(md);
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
};
#else
class Regex {
 public:
  Regex(const std::string&, const std::string& where) {
    fail(where, ": this hyft was built without PCRE2, which tokenizer.json's regexes need; install libpcre2-dev "
         "and rebuild");
  }
  std::vector<std::pair<size_t, size_t>> find_all(const std::string&) const { return {}; }
};
#endif

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ------------------------------------------------------- pre-tokenizers -------

enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext };

struct PreTokenizer {
  enum class Kind { ByteLevel, Split, Digits } kind;
  bool add_prefix_space = false, use_regex = true, individual_digits = false;
  Behavior behavior = Behavior::Isolated;
  std::shared_ptr<Regex> regex;  // Split (a regex, or an escaped string), ByteLevel with use_regex
};

std::string escape_literal(const std::string& s) {
  std::string out = "\\Q";
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "\\E") == 0) {
      out += "\\E\\\\E\\Q";
      ++i;
    } else {
      out += s[i];
    }
  }
  return out + "\\E";
}

}  // namespace

// --------------------------------------------------------------- Impl --------

struct BpeTokenizer::Impl {
  std::string path;
  std::unordered_map<std::string, int64_t> vocab;
  std::vector<std::string> id_to_token;
  // Merges by the ids of the pair: its rank (priority) and the merged token's id.
  struct Merge {
    int32_t rank;
    int64_t merged;
  };
  std::unordered_map<uint64_t, Merge> merges;
  static uint64_t pair_key(int64_t a, int64_t b) { return (uint64_t(a) << 32) | uint64_t(uint32_t(b)); }
  bool ignore_merges = false, byte_fallback = false, fuse_unk = false;
  std::optional<int64_t> unk;
  std::vector<NormalizerStep> normalizer;  // on each stretch between non-normalized added tokens
  std::vector<NormalizerStep> metaspace;   // the Metaspace pre-tokenizer's replace/prepend, per section
  std::vector<PreTokenizer> pre;
  std::vector<AddedToken> added_raw, added_normalized;  // matched before / after normalizing
  std::optional<int64_t> bos;
  std::vector<DecoderStep> decoders;
  // Words already encoded, in shards with a lock each (threads encode in parallel).
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::pair<int64_t, size_t>>> words;
  };
  static constexpr size_t kShards = 32;
  mutable std::array<CacheShard, kShards> cache;
  CacheShard& shard(const std::string& word) const { return cache[std::hash<std::string>()(word) % kShards]; }

  std::string where(const std::string& part) const { return path + ": " + part; }

  // A Split's or Punctuation's behavior (Isolated when absent).
  Behavior read_behavior(const nlohmann::json& p, const std::string& at) const {
    const std::string b = p.value("behavior", std::string("Isolated"));
    if (b == "Isolated") return Behavior::Isolated;
    if (b == "Removed") return Behavior::Removed;
    if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
    if (b == "MergedWithNext") return Behavior::MergedWithNext;
    fail(where(at), ": behavior '", b, "' is not supported (Isolated, Removed, MergedWithPrevious, MergedWithNext are)");
  }

  void read_pre(const nlohmann::json& p, const std::string& at) {
    HYFT_CHECK(p.is_object() && p.contains("type") && p["type"].is_string(), where(at), " must be an object with a type");
    const std::string type = p["type"].get<std::string>();
    PreTokenizer t{};
    if (type == "Sequence") {
      HYFT_CHECK(p.contains("pretokenizers") && p["pretokenizers"].is_array(), where(at), ".pretokenizers must be a list");
      for (size_t i = 0; i < p["pretokenizers"].size(); ++i)
        read_pre(p["pretokenizers"][i], at + ".pretokenizers[" + std::to_string(i) + "]");
      return;
    }
    if (type == "ByteLevel") {
      t.kind = PreTokenizer::Kind::ByteLevel;
      t.add_prefix_space = p.value("add_prefix_space", false);
      t.use_regex = p.value("use_regex", true);
      if (t.use_regex) t.regex = std::make_shared<Regex>(kGpt2Pattern, where(at));
    } else if (type == "Split") {
      t.kind = PreTokenizer::Kind::Split;
      HYFT_CHECK(!p.value("invert", false), where(at), ": Split with invert is not supported");
      const auto& pat = p.value("pattern", nlohmann::json());
      if (pat.contains("Regex") && pat["Regex"].is_string())
        t.regex = std::make_shared<Regex>(pat["Regex"].get<std::string>(), where(at));
      else if (pat.contains("String") && pat["String"].is_string())
        t.regex = std::make_shared<Regex>(escape_literal(pat["String"].get<std::string>()), where(at));
      else
        fail(where(at), ": Split needs a pattern {\"Regex\": ...} or {\"String\": ...}");
      t.behavior = read_behavior(p, at);
    } else if (type == "Metaspace") {
      // As normalizing steps of each section, then a split before every replacement.
      HYFT_CHECK(pre.empty() && metaspace.empty(), where(at), ": Metaspace is supported as the first pre-tokenizer only");
      metaspace_steps(p, where(at), metaspace);
      if (!p.value("split", true)) return;
      t.kind = PreTokenizer::Kind::Split;
      t.regex = std::make_shared<Regex>(escape_literal(p.value("replacement", std::string("\xE2\x96\x81"))), where(at));
      t.behavior = Behavior::MergedWithNext;
    } else if (type == "Punctuation") {
      // Each punctuation character (Unicode P*, and ASCII punctuation) on its own.
      t.kind = PreTokenizer::Kind::Split;
      t.regex = std::make_shared<Regex>(R"([\p{P}!-/:-@\[-`{-~])", where(at));
      t.behavior = read_behavior(p, at);
    } else if (type == "Digits") {
      t.kind = PreTokenizer::Kind::Digits;
      t.individual_digits = p.value("individual_digits", false);
    } else {
      fail(where(at), ": pre-tokenizer '", type,
           "' is not supported (ByteLevel, Split, Digits, Punctuation, Metaspace, Sequence are)");
    }
    pre.push_back(std::move(t));
  }

  // A pre-tokenized piece: its text (byte-level characters once mapped), where it
  // starts in the input, and whether it was mapped (one character per input byte)
  // and given a prefix space the input does not have.
  struct Piece {
    std::string s;
    size_t start = 0;
    bool mapped = false, prefixed = false;
  };

  // The pieces a split leaves, with their starts (Removed drops bytes: the starts say where).
  static std::vector<Piece> split_piece(const Piece& p, const std::vector<std::pair<size_t, size_t>>& matches,
                                        Behavior b) {
    // Offsets into p.s; for mapped pieces each character stands for one input byte.
    std::vector<Piece> out;
    const auto input_offset = [&](size_t at) { return p.start + (p.mapped ? char_count(p.s, 0, at) : at); };
    size_t last = 0;
    std::optional<std::pair<size_t, size_t>> carry;  // MergedWithNext
    auto emit = [&](size_t b0, size_t e0) {
      if (e0 > b0) out.push_back({p.s.substr(b0, e0 - b0), input_offset(b0), p.mapped, false});
    };
    for (const auto& [mb, me] : matches) {
      switch (b) {
        case Behavior::Isolated: emit(last, mb); emit(mb, me); break;
        case Behavior::Removed: emit(last, mb); break;
        case Behavior::MergedWithPrevious:
          if (mb > last || out.empty()) emit(last, me);
          else out.back().s += p.s.substr(mb, me - mb);
          break;
        case Behavior::MergedWithNext:
          emit(carry ? carry->first : last, mb);
          carry = std::make_pair(mb, me);
          break;
      }
      last = me;
    }
    emit(carry ? carry->first : last, p.s.size());
    return out;
  }

  // `text` through the pre-tokenizers; pieces' starts are offsets in `text`.
  std::vector<Piece> pre_tokenize(const std::string& text) const {
    std::vector<Piece> pieces = {{text, 0, false, false}};
    for (const auto& t : pre) {
      std::vector<Piece> next;
      for (auto& piece : pieces) {
        switch (t.kind) {
          case PreTokenizer::Kind::ByteLevel: {
            Piece p = piece;
            if (t.add_prefix_space && (p.s.empty() || p.s[0] != ' ')) {
              p.s = " " + p.s;
              p.prefixed = true;
            }
            std::vector<Piece> parts = t.use_regex ? split_piece(p, t.regex->find_all(p.s), Behavior::Isolated)
                                                   : std::vector<Piece>{p};
            for (size_t i = 0; i < parts.size(); ++i) {
              Piece& part = parts[i];
              part.prefixed = p.prefixed && i == 0;
              if (part.prefixed) part.start = p.start;
              else if (p.prefixed) part.start -= 1;  // offsets counted the added space
              std::string mapped;
              for (const unsigned char c : part.s) mapped += byte_map().to_char[c];
              part.s = std::move(mapped);
              part.mapped = true;
              next.push_back(std::move(part));
            }
            break;
          }
          case PreTokenizer::Kind::Split:
            for (auto& part : split_piece(piece, t.regex->find_all(piece.s), t.behavior)) next.push_back(std::move(part));
            break;
          case PreTokenizer::Kind::Digits: {
            std::vector<std::pair<size_t, size_t>> runs;
            const std::string& s = piece.s;
            for (size_t i = 0; i < s.size(); ++i) {
              if (s[i] < '0' || s[i] > '9') continue;
              size_t j = i + 1;
              if (!t.individual_digits)
                while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
              runs.emplace_back(i, j);
              i = j - 1;
            }
            for (auto& part : split_piece(piece, runs, Behavior::Isolated)) next.push_back(std::move(part));
            break;
          }
        }
      }
      pieces = std::move(next);
    }
    return pieces;
  }

  // BPE over one pre-tokenized piece: merge the adjacent pair of lowest rank
  // (leftmost on ties) until none is in the merges.
  // Each token of `word` with the bytes of `word` it covers. The merges run as in
  // the tokenizers package: a heap of adjacent pairs by (rank, position), so the
  // pair of lowest rank merges first, the leftmost on ties; O(n log n) per word.
  using Tokens = std::vector<std::pair<int64_t, size_t>>;
  Tokens bpe(const std::string& word) const {
    CacheShard& cached = shard(word);
    {
      std::lock_guard<std::mutex> lock(cached.mutex);
      const auto it = cached.words.find(word);
      if (it != cached.words.end()) return it->second;
    }
    Tokens out;
    const auto whole = vocab.find(word);
    if (ignore_merges && whole != vocab.end()) {
      out.emplace_back(whole->second, word.size());
    } else {
      // Symbols: a character's id, or its <0xXX> byte tokens (byte_fallback), or the
      // unknown token (-1 without one), consecutive unknowns fused (fuse_unk).
      struct Sym {
        int64_t id;
        size_t len;
        int prev, next;
      };
      std::vector<Sym> sym;
      bool last_unknown = false;
      for (const auto& ch : characters(word)) {
        const auto v = vocab.find(ch);
        if (v != vocab.end()) {
          sym.push_back({v->second, ch.size(), 0, 0});
          last_unknown = false;
          continue;
        }
        if (byte_fallback) {
          std::vector<int64_t> bytes;
          for (const unsigned char b : ch) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            const auto bv = vocab.find(name);
            if (bv != vocab.end()) bytes.push_back(bv->second);
          }
          if (bytes.size() == ch.size()) {
            for (const int64_t id : bytes) sym.push_back({id, 1, 0, 0});
            last_unknown = false;
            continue;
          }
        }
        if (!unk) fail(path, ": '", word, "' has a character outside the vocabulary and the model has no unk_token");
        if (fuse_unk && last_unknown) sym.back().len += ch.size();
        else sym.push_back({*unk, ch.size(), 0, 0});
        last_unknown = true;
      }
      const int n = int(sym.size());
      for (int k = 0; k < n; ++k) sym[size_t(k)].prev = k - 1, sym[size_t(k)].next = k + 1 < n ? k + 1 : -1;
      using Entry = std::pair<int32_t, int>;  // (rank, position)
      std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
      auto merge_of = [&](int a) -> const Merge* {
        const int b = sym[size_t(a)].next;
        if (b < 0) return nullptr;
        const auto it = merges.find(pair_key(sym[size_t(a)].id, sym[size_t(b)].id));
        return it == merges.end() ? nullptr : &it->second;
      };
      for (int k = 0; k + 1 < n; ++k)
        if (const Merge* mg = merge_of(k)) heap.push({mg->rank, k});
      while (!heap.empty()) {
        const auto [rank, at] = heap.top();
        heap.pop();
        Sym& a = sym[size_t(at)];
        const Merge* mg = a.len ? merge_of(at) : nullptr;
        if (!mg || mg->rank != rank) continue;  // stale: a side merged since
        Sym& b = sym[size_t(a.next)];
        a.id = mg->merged;
        a.len += b.len;
        b.len = 0;
        a.next = b.next;
        if (a.next >= 0) sym[size_t(a.next)].prev = at;
        if (a.prev >= 0)
          if (const Merge* left = merge_of(a.prev)) heap.push({left->rank, a.prev});
        if (const Merge* right = merge_of(at)) heap.push({right->rank, at});
      }
      for (int k = n > 0 ? 0 : -1; k >= 0; k = sym[size_t(k)].next) out.emplace_back(sym[size_t(k)].id, sym[size_t(k)].len);
    }
    std::lock_guard<std::mutex> lock(cached.mutex);
    if (cached.words.size() < 200000 / kShards) cached.words.emplace(word, out);
    return out;
  }
};

bool bpe_supported() {
#ifdef HYFT_HAVE_PCRE2
  return true;
#else
  return false;
#endif
}

BpeTokenizer::BpeTokenizer(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  const nlohmann::json j = io::read_json_file(path, "a tokenizer.json");
  HYFT_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), path, ": no 'model' object");
  const auto& model = j["model"];
  HYFT_CHECK(model.value("type", std::string()) == "BPE", path, ": model type ", model.value("type", nlohmann::json()).dump(),
             " is not supported (hyft reads BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
    HYFT_CHECK(!model.contains(key) || model[key].is_null() || model[key] == "", path, ": model.", key,
               " is not supported");
  m.byte_fallback = model.value("byte_fallback", false);
  m.fuse_unk = model.value("fuse_unk", false);
  m.ignore_merges = model.value("ignore_merges", false);
  HYFT_CHECK(model.contains("vocab") && model["vocab"].is_object(), path, ": model.vocab must be an object");
  int64_t largest = -1;
  for (const auto& [token, id] : model["vocab"].items()) {
    HYFT_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0, path, ": model.vocab['", token, "'] must be an id");
    m.vocab[token] = id.get<int64_t>();
    largest = std::max(largest, id.get<int64_t>());
  }
  HYFT_CHECK(model.contains("merges") && model["merges"].is_array(), path, ": model.merges must be a list");
  int64_t rank = 0;
  for (const auto& mg : model["merges"]) {
    std::pair<std::string, std::string> pair;
    if (mg.is_string()) {  // "a b"
      const std::string s = mg.get<std::string>();
      const size_t space = s.find(' ', 1);
      HYFT_CHECK(space != std::string::npos, path, ": merge '", s, "' is not two tokens");
      pair = {s.substr(0, space), s.substr(space + 1)};
    } else {
      HYFT_CHECK(mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string(), path,
                 ": a merge must be \"a b\" or [\"a\", \"b\"]");
      pair = {mg[0].get<std::string>(), mg[1].get<std::string>()};
    }
    // A merge whose parts or result are not in the vocabulary can never apply.
    const auto x = m.vocab.find(pair.first), y = m.vocab.find(pair.second), xy = m.vocab.find(pair.first + pair.second);
    if (x != m.vocab.end() && y != m.vocab.end() && xy != m.vocab.end())
      m.merges.emplace(Impl::pair_key(x->second, y->second), Impl::Merge{int32_t(rank), xy->second});
    ++rank;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto u = m.vocab.find(model["unk_token"].get<std::string>());
    if (u != m.vocab.end()) m.unk = u->second;
  }

  if (j.contains("normalizer")) read_normalizer(j["normalizer"], path + ": normalizer", m.normalizer);
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) m.read_pre(j["pre_tokenizer"], "pre_tokenizer");

  // Added tokens, matched in the raw text before anything else.
  if (j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& a : j["added_tokens"]) {
      HYFT_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                     a["content"].is_string(),
                 path, ": an added token needs an id and a content");
      const AddedToken t{a["content"].get<std::string>(), a["id"].get<int64_t>(), a.value("lstrip", false),
                         a.value("rstrip", false), a.value("single_word", false)};
      // normalized (default: not special): matched in the normalized text.
      (a.value("normalized", !a.value("special", false)) ? m.added_normalized : m.added_raw).push_back(t);
      largest = std::max(largest, a["id"].get<int64_t>());
    }
  m.id_to_token.assign(size_t(largest + 1), "");
  for (const auto& [token, id] : m.vocab) m.id_to_token[size_t(id)] = token;
  for (const auto* list : {&m.added_raw, &m.added_normalized})
    for (const auto& t : *list) m.id_to_token[size_t(t.id)] = t.content;

  // Post-processor: the BOS of a TemplateProcessing; ByteLevel changes no id.
  if (j.contains("post_processor") && !j["post_processor"].is_null()) {
    const auto& p = j["post_processor"];
    const std::string type = p.value("type", std::string());
    if (type == "TemplateProcessing") {
      if (p.contains("single") && p["single"].is_array() && !p["single"].empty() &&
          p["single"][0].contains("SpecialToken")) {
        const std::string bos = p["single"][0]["SpecialToken"].value("id", std::string());
        m.bos = token_id(bos);
        HYFT_CHECK(m.bos, path, ": post_processor's first special token '", bos, "' is not in the vocabulary");
      }
    } else {
      HYFT_CHECK(type == "ByteLevel", path, ": post_processor '", type,
                 "' is not supported (TemplateProcessing and ByteLevel are)");
    }
  }
  if (j.contains("decoder")) read_decoder(j["decoder"], path + ": decoder", m.decoders);
}

BpeTokenizer::~BpeTokenizer() = default;
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const { return encode_with_ends(text).ids; }

TokenSpans BpeTokenizer::encode_with_ends(const std::string& text) const {
  const Impl& m = *impl_;
  const size_t bad = first_invalid_utf8(text);
  HYFT_CHECK(bad == std::string::npos, "the text to encode is not valid UTF-8 (byte ", bad + 1, ")");
  TokenSpans out;
  auto push = [&](int64_t id, size_t end) {
    out.ids.push_back(id);
    out.ends.push_back(end);
  };
  // One section between added tokens, normalized: Metaspace's steps, the
  // pre-tokenizers, BPE; token ends mapped back to the input through the alignment.
  auto encode_section = [&](const AlignedText& section) {
    const AlignedText a = normalize(m.metaspace, section);
    for (const auto& piece : m.pre_tokenize(a.s)) {
      // In a mapped piece each character stands for one byte of a.s (less a prefix
      // space a.s does not have); in an unmapped piece bytes are bytes.
      size_t covered = 0, chars = 0;  // bytes and characters of piece.s so far
      for (const auto& [id, n] : m.bpe(piece.s)) {
        if (piece.mapped) chars += char_count(piece.s, covered, covered + n);
        covered += n;
        size_t end = piece.mapped ? chars : covered;
        if (piece.prefixed) end = end > 0 ? end - 1 : 0;
        push(id, a.original_end(piece.start + end));
      }
    }
  };
  // Tokens added with normalized: false are found in the raw text; the text between
  // them is normalized, then searched for the normalized ones.
  split_on_added_tokens(
      text, m.added_raw,
      [&](size_t begin, size_t end) {
        const AlignedText norm = normalize(m.normalizer, AlignedText::of(text.substr(begin, end - begin), begin));
        split_on_added_tokens(
            norm.s, m.added_normalized, [&](size_t b, size_t e) { encode_section(norm.slice(b, e)); },
            [&](int64_t id, size_t e) { push(id, norm.original_end(e)); });
      },
      push);
  return out;
}

std::string BpeTokenizer::token(int64_t id) const {
  HYFT_CHECK(id >= 0 && id < vocab_size(), impl_->path, ": id ", id, " is outside the vocabulary");
  return impl_->id_to_token[size_t(id)];
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  for (const int64_t id : ids) {
    HYFT_CHECK(id >= 0 && id < int64_t(m.id_to_token.size()), m.path, ": id ", id, " is outside the vocabulary");
    tokens.push_back(m.id_to_token[size_t(id)]);
  }
  // ByteLevel: a token of byte-level characters back to its bytes (added tokens,
  // whose characters are not all in the map, stay as they are).
  const auto byte_level = [](const std::string& token) {
    std::string mapped;
    for (const auto& ch : characters(token)) {
      const auto b = byte_map().to_byte.find(ch);
      if (b == byte_map().to_byte.end()) return token;
      mapped += char(b->second);
    }
    return mapped;
  };
  return run_decoders(m.decoders, std::move(tokens), byte_level);
}

int64_t BpeTokenizer::vocab_size() const { return int64_t(impl_->id_to_token.size()); }

std::optional<int64_t> BpeTokenizer::token_id(const std::string& token) const {
  for (const auto* list : {&impl_->added_raw, &impl_->added_normalized})
    for (const auto& t : *list)
      if (t.content == token) return t.id;
  const auto it = impl_->vocab.find(token);
  return it == impl_->vocab.end() ? std::nullopt : std::optional<int64_t>(it->second);
}

std::optional<int64_t> BpeTokenizer::bos_id() const { return impl_->bos; }

const std::string& BpeTokenizer::path() const { return impl_->path; }

}  // namespace hyft::tokenizer
