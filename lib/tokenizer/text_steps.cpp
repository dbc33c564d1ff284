#include "tokenizer/text_steps.h"

#include "common/error.h"
#include "common/strings.h"

#include <cstdio>

#ifdef HYFT_HAVE_ICU
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>
#endif

namespace hyft::tokenizer {

AlignedText AlignedText::of(const std::string& text, size_t start) {
  AlignedText a;
  a.s = text;
  a.start = start;
  a.end.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) a.end[i] = start + i + 1;
  return a;
}

AlignedText AlignedText::slice(size_t b, size_t e) const {
  AlignedText a;
  a.s = s.substr(b, e - b);
  a.end.assign(end.begin() + int64_t(b), end.begin() + int64_t(e));
  a.start = original_end(b);
  return a;
}

namespace {

std::string string_pattern(const nlohmann::json& step, const std::string& where) {
  const auto& p = step.value("pattern", nlohmann::json());
  if (p.is_object() && p.contains("String") && p["String"].is_string()) return p["String"].get<std::string>();
  fail(where, ": only String patterns are supported here (got ", p.dump(), ")");
}

void prepend(AlignedText& a, const std::string& text) {
  a.s.insert(0, text);
  a.end.insert(a.end.begin(), text.size(), a.start);
}

void replace(AlignedText& a, const std::string& pattern, const std::string& text) {
  if (pattern.empty()) return;
  AlignedText out;
  out.start = a.start;
  size_t at = 0;
  for (size_t p = a.s.find(pattern); p != std::string::npos; p = a.s.find(pattern, at)) {
    out.s.append(a.s, at, p - at);
    out.end.insert(out.end.end(), a.end.begin() + int64_t(at), a.end.begin() + int64_t(p));
    out.s += text;
    out.end.insert(out.end.end(), text.size(), a.end[p + pattern.size() - 1]);
    at = p + pattern.size();
  }
  out.s.append(a.s, at, std::string::npos);
  out.end.insert(out.end.end(), a.end.begin() + int64_t(at), a.end.end());
  a = std::move(out);
}

// Unicode normalization in chunks that normalize independently (each starts at a
// character with a normalization boundary before it), so that every output byte
// maps to the end of its chunk in the original.
void unicode_normalize(AlignedText& a, const std::string& form) {
#ifdef HYFT_HAVE_ICU
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = form == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
                              : form == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
                              : form == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                                               : icu::Normalizer2::getNFKDInstance(status);
  TORCH_INTERNAL_ASSERT(U_SUCCESS(status), "ICU has no ", form, " normalizer");
  AlignedText out;
  out.start = a.start;
  size_t chunk = 0;
  auto flush = [&](size_t end) {
    if (end == chunk) return;
    const icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(a.s.data() + chunk, int32_t(end - chunk)));
    UErrorCode st = U_ZERO_ERROR;
    if (n->isNormalized(u, st) && U_SUCCESS(st)) {
      out.s.append(a.s, chunk, end - chunk);
      out.end.insert(out.end.end(), a.end.begin() + int64_t(chunk), a.end.begin() + int64_t(end));
    } else {
      st = U_ZERO_ERROR;
      std::string text;
      n->normalize(u, st).toUTF8String(text);
      out.s += text;
      out.end.insert(out.end.end(), text.size(), a.end[end - 1]);
    }
    chunk = end;
  };
  const auto* bytes = reinterpret_cast<const uint8_t*>(a.s.data());
  const int32_t length = int32_t(a.s.size());
  for (int32_t i = 0; i < length;) {
    const int32_t at = i;
    UChar32 cp = 0;
    U8_NEXT(bytes, i, length, cp);
    if (at > 0 && cp >= 0 && n->hasBoundaryBefore(cp)) flush(size_t(at));
  }
  flush(a.s.size());
  a = std::move(out);
#else
  (void)a;
  fail("the ", form, " normalizer needs ICU; this hyft was built without it (install libicu-dev and rebuild)");
#endif
}

}  // namespace

void read_normalizer(const nlohmann::json& n, const std::string& where, std::vector<NormalizerStep>& out) {
  if (n.is_null()) return;
  HYFT_CHECK(n.is_object() && n.contains("type") && n["type"].is_string(), where, " must be an object with a type");
  const std::string type = n["type"].get<std::string>();
  if (type == "Sequence") {
    HYFT_CHECK(n.contains("normalizers") && n["normalizers"].is_array(), where, ".normalizers must be a list");
    for (size_t i = 0; i < n["normalizers"].size(); ++i)
      read_normalizer(n["normalizers"][i], where + ".normalizers[" + std::to_string(i) + "]", out);
  } else if (type == "Prepend") {
    HYFT_CHECK(n.contains("prepend") && n["prepend"].is_string(), where, ": Prepend needs a string 'prepend'");
    out.push_back({NormalizerStep::Kind::Prepend, "", n["prepend"].get<std::string>()});
  } else if (type == "Replace") {
    HYFT_CHECK(n.contains("content") && n["content"].is_string(), where, ": Replace needs a string 'content'");
    out.push_back({NormalizerStep::Kind::Replace, string_pattern(n, where), n["content"].get<std::string>()});
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
#ifndef HYFT_HAVE_ICU
    fail(where, ": normalizer \"", type, "\" needs ICU, and this hyft was built without it; install libicu-dev and "
         "rebuild");
#endif
    out.push_back({NormalizerStep::Kind::Unicode, "", type});
  } else {
    fail(where, ": normalizer \"", type, "\" is not supported yet (Prepend, Replace, NFC, NFD, NFKC, NFKD and "
         "Sequence are)");
  }
}

namespace {
// A Metaspace pre-tokenizer's or decoder's prepend_scheme: always, first or never
// (older files say add_prefix_space instead).
std::string metaspace_scheme(const nlohmann::json& p, const std::string& where) {
  std::string scheme = p.value("prepend_scheme", std::string());
  if (scheme.empty()) scheme = p.value("add_prefix_space", true) ? "always" : "never";
  HYFT_CHECK(scheme == "always" || scheme == "first" || scheme == "never", where, ": Metaspace prepend_scheme '",
             scheme, "' is not always, first or never");
  return scheme;
}
}  // namespace

void metaspace_steps(const nlohmann::json& p, const std::string& where, std::vector<NormalizerStep>& out) {
  const std::string replacement = p.value("replacement", std::string("\xE2\x96\x81"));
  const std::string scheme = metaspace_scheme(p, where);
  out.push_back({NormalizerStep::Kind::Replace, " ", replacement});
  if (scheme != "never") out.push_back({NormalizerStep::Kind::Prepend, "", replacement, scheme == "first", true});
}

AlignedText normalize(const std::vector<NormalizerStep>& steps, AlignedText a) {
  for (const auto& step : steps) {
    if (step.kind == NormalizerStep::Kind::Unicode) {
      unicode_normalize(a, step.text);
    } else if (step.kind == NormalizerStep::Kind::Replace) {
      replace(a, step.pattern, step.text);
    } else if (!a.s.empty() && !(step.only_at_input_start && a.start != 0) &&
               !(step.unless_already_there && a.s.compare(0, step.text.size(), step.text) == 0)) {
      prepend(a, step.text);
    }
  }
  return a;
}

void read_decoder(const nlohmann::json& d, const std::string& where, std::vector<DecoderStep>& out) {
  if (d.is_null()) return;
  HYFT_CHECK(d.is_object() && d.contains("type") && d["type"].is_string(), where, " must be an object with a type");
  const std::string type = d["type"].get<std::string>();
  using K = DecoderStep::Kind;
  if (type == "Sequence") {
    HYFT_CHECK(d.contains("decoders") && d["decoders"].is_array(), where, ".decoders must be a list");
    for (size_t i = 0; i < d["decoders"].size(); ++i)
      read_decoder(d["decoders"][i], where + ".decoders[" + std::to_string(i) + "]", out);
  } else if (type == "ByteLevel") {
    out.push_back({K::ByteLevel});
  } else if (type == "ByteFallback") {
    out.push_back({K::ByteFallback});
  } else if (type == "Fuse") {
    out.push_back({K::Fuse});
  } else if (type == "Replace") {
    HYFT_CHECK(d.contains("content") && d["content"].is_string(), where, ": Replace needs a string 'content'");
    out.push_back({K::Replace, string_pattern(d, where), d["content"].get<std::string>()});
  } else if (type == "Strip") {
    DecoderStep s{K::Strip};
    s.content = d.value("content", std::string(" "));
    HYFT_CHECK(!s.content.empty(), where, ": Strip's content must be a character");
    s.start = d.value("start", size_t(0));
    s.stop = d.value("stop", size_t(0));
    out.push_back(s);
  } else if (type == "Metaspace") {
    DecoderStep s{K::Metaspace};
    s.content = d.value("replacement", std::string("\xE2\x96\x81"));
    s.first_space = metaspace_scheme(d, where) != "never";
    out.push_back(s);
  } else {
    fail(where, ": decoder '", type, "' is not supported (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace "
         "and Sequence are)");
  }
}

namespace {

// "<0xAB>" -> 0xAB, else -1.
int byte_token(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  unsigned v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = t[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + unsigned(d);
  }
  return int(v);
}

// Bytes as UTF-8, each maximal invalid subsequence replaced by one U+FFFD (the
// Unicode recommendation that Rust's from_utf8_lossy and Python's "replace" follow):
// a lead byte and the continuation bytes that could still belong to it go as one.
std::string lossy_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      out += char(c);
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    size_t ok = 1;  // bytes of a valid prefix
    while (len && ok < len && i + ok < s.size()) {
      const auto d = static_cast<unsigned char>(s[i + ok]);
      if (d < (ok == 1 ? lo : 0x80) || d > (ok == 1 ? hi : 0xBF)) break;
      ++ok;
    }
    if (len && ok == len) out.append(s, i, len);
    else out += "\xEF\xBF\xBD";
    i += ok;
  }
  return out;
}


}  // namespace

std::string run_decoders(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens,
                         const std::function<std::string(const std::string&)>& byte_level) {
  using K = DecoderStep::Kind;
  bool raw_bytes = false;  // after ByteLevel the tokens hold bytes, decoded lossily at the end
  for (const auto& step : steps) {
    switch (step.kind) {
      case K::ByteLevel:
        for (auto& t : tokens) t = byte_level(t);
        raw_bytes = true;
        break;
      case K::Replace:
        for (auto& t : tokens) t = replace_all(t, step.pattern, step.content);
        break;
      case K::Fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens = {all};
        break;
      }
      case K::Strip:
        for (auto& t : tokens) {
          for (size_t i = 0; i < step.start && t.compare(0, step.content.size(), step.content) == 0; ++i)
            t.erase(0, step.content.size());
          for (size_t i = 0; i < step.stop && t.size() >= step.content.size() &&
                             t.compare(t.size() - step.content.size(), step.content.size(), step.content) == 0;
               ++i)
            t.erase(t.size() - step.content.size());
        }
        break;
      case K::Metaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = replace_all(tokens[i], step.content, " ");
          if (i == 0 && step.first_space && !tokens[i].empty() && tokens[i][0] == ' ') tokens[i].erase(0, 1);
        }
        break;
      case K::ByteFallback: {
        // Runs of byte tokens become their UTF-8 text, or U+FFFD per byte when invalid.
        std::vector<std::string> out;
        std::string run;
        size_t run_len = 0;
        auto flush = [&] {
          if (run_len == 0) return;
          if (first_invalid_utf8(run) == std::string::npos) out.push_back(run);
          else
            for (size_t i = 0; i < run_len; ++i) out.push_back("\xEF\xBF\xBD");
          run.clear();
          run_len = 0;
        };
        for (const auto& t : tokens) {
          const int b = byte_token(t);
          if (b < 0) {
            flush();
            out.push_back(t);
          } else {
            run += char(b);
            ++run_len;
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
    }
  }
  std::string text;
  for (const auto& t : tokens) text += t;
  return raw_bytes ? lossy_utf8(text) : text;
}

}  // namespace hyft::tokenizer
