#include "data/dataset.h"

#include "common/error.h"
#include "common/parallel.h"
#include "data/dataset_cache.h"
#include "data/shuffle.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>

namespace hyft::data {

Overlength parse_overlength(const std::string& text, const std::string& flag) {
  if (text == "truncate") return Overlength::Truncate;
  if (text == "drop") return Overlength::Drop;
  if (text == "error") return Overlength::Error;
  fail(flag, ": '", text, "' is not a length policy; use truncate, drop or error");
}

const char* overlength_name(Overlength policy) {
  switch (policy) {
    case Overlength::Truncate: return "truncate";
    case Overlength::Drop: return "drop";
    case Overlength::Error: return "error";
  }
  return "?";
}

Example tokenize_record(const Record& record, const tokenizer::Tokenizer* tok, bool train_on_prompt) {
  if (record.kind == RecordKind::Pretokenized) {
    Example ex = record.pretokenized;
    ex.weight = record.weight;
    ex.label = record.label;
    return ex;
  }
  TORCH_INTERNAL_ASSERT(tok, "tokenize_record needs a tokenizer");
  Example ex;
  ex.weight = record.weight;
  ex.label = record.label;
  auto append = [&](int64_t id, bool trainable) {
    ex.input_ids.push_back(id);
    ex.labels.push_back(trainable ? id : kIgnoreIndex);
  };
  // The text since the last special token, with where each segment ends in it.
  std::string run;
  std::vector<std::pair<size_t, bool>> run_segments;  // (end offset, carries the loss)
  bool text_starts_input = record.kind != RecordKind::Chat;
  auto flush = [&] {
    if (run.empty()) return;
    const auto spans = tok->encode_spans(run, text_starts_input);
    size_t seg = 0;
    for (size_t i = 0; i < spans.ids.size(); ++i) {
      const size_t last_byte = spans.ends[i] > 0 ? spans.ends[i] - 1 : 0;
      while (seg + 1 < run_segments.size() && last_byte >= run_segments[seg].first) ++seg;
      append(spans.ids[i], run_segments[seg].second || train_on_prompt);
    }
    run.clear();
    run_segments.clear();
    text_starts_input = false;
  };
  if (record.add_bos)
    if (const auto bos = tok->bos_id()) append(*bos, false);
  for (const auto& seg : record.segments) {
    switch (seg.special) {
      case Segment::Special::Eos:
        flush();
        if (const auto eos = tok->eos_id()) append(*eos, true);  // never masked
        break;
      case Segment::Special::Token: {
        flush();
        const auto id = tok->token_id(seg.text);
        HYFT_CHECK(id, "the chat template's special token '", seg.text, "' is not in the tokenizer ", tok->path());
        append(*id, seg.trainable || train_on_prompt);
        break;
      }
      case Segment::Special::Bos:
        flush();
        if (const auto bos = tok->bos_id()) append(*bos, false);
        break;
      case Segment::Special::None:
        if (seg.text.empty()) break;
        run += seg.text;
        run_segments.emplace_back(run.size(), seg.trainable);
        break;
    }
  }
  flush();
  return ex;
}

namespace {

// What became of one line. OverlengthError is never skipped: the user asked for it.
enum class Outcome { Blank, Kept, Truncated, DroppedOverlength, DroppedNoTarget, Bad, OverlengthError };

struct LineResult {
  Outcome outcome = Outcome::Blank;
  RecordKind kind = RecordKind::Text;
  Example example;
  std::string error;
};

LineResult process_line(const std::string& text, const std::string& path, int64_t line_no,
                        const tokenizer::Tokenizer* tok, int64_t vocab_size, const DatasetOptions& o) {
  LineResult r;
  const ParsedLine parsed = parse_jsonl_line(text, path, line_no);
  if (parsed.status == ParsedLine::Status::Blank) return r;
  if (parsed.status == ParsedLine::Status::Bad) {
    r.outcome = Outcome::Bad;
    r.error = parsed.error;
    return r;
  }
  try {
    const JsonlLine line{path, line_no, parsed.value};
    const Record record = parse_record(line, o.records, vocab_size);
    r.kind = record.kind;
    if (record.kind != RecordKind::Pretokenized && !tok)
      line.fail(std::string("a ") + kind_name(record.kind) +
                " record needs a tokenizer: the model folder has no tokenizer.model; pass --tokenizer FILE.model");
    r.example = tokenize_record(record, tok, o.tokens.train_on_prompt);
    r.example.line = line_no;
  } catch (const UserError& e) {
    r.outcome = Outcome::Bad;
    r.error = e.what();
    return r;
  }
  auto& ex = r.example;
  r.outcome = Outcome::Kept;
  const int64_t n = static_cast<int64_t>(ex.input_ids.size());
  if (n > o.tokens.max_seq_len) {
    switch (o.tokens.overlength) {
      case Overlength::Error:
        r.outcome = Outcome::OverlengthError;
        r.error = path + ":" + std::to_string(line_no) + ": " + std::to_string(n) + " tokens exceed max_seq_len " +
                  std::to_string(o.tokens.max_seq_len) + "; use --overlength truncate or drop, or raise --max-seq-len";
        return r;
      case Overlength::Drop:
        r.outcome = Outcome::DroppedOverlength;
        return r;
      case Overlength::Truncate:
        ex.input_ids.resize(size_t(o.tokens.max_seq_len));
        ex.labels.resize(size_t(o.tokens.max_seq_len));
        r.outcome = Outcome::Truncated;
        break;
    }
  }
  if (ex.target_count() == 0) r.outcome = Outcome::DroppedNoTarget;
  return r;
}

}  // namespace

Dataset load_dataset(const std::string& path, const tokenizer::Tokenizer* tok, int64_t vocab_size,
                     const DatasetOptions& o) {
  HYFT_CHECK(o.tokens.max_seq_len >= 2, "--max-seq-len must be at least 2, got ", o.tokens.max_seq_len);
  std::string cache_path;
  if (!o.cache_dir.empty()) {
    cache_path = dataset_cache_path(o.cache_dir, path, tok, vocab_size, o);
    if (auto cached = read_dataset_cache(cache_path)) {
      cached->max_seq_len = o.tokens.max_seq_len;  // part of the cache key
      return std::move(*cached);
    }
  }
  Dataset d = tokenize_dataset(path, tok, vocab_size, o);
  if (!cache_path.empty()) {
    try {
      write_dataset_cache(cache_path, d);
    } catch (const UserError& e) {
      std::cerr << "warning: not caching the tokenized dataset: " << e.what() << "\n";
    }
  }
  return d;
}

Dataset tokenize_dataset(const std::string& path, const tokenizer::Tokenizer* tok, int64_t vocab_size,
                         const DatasetOptions& o) {
  std::vector<std::string> lines = read_lines(path);

  // Lines are independent: render and tokenize them on every core, in blocks.
  std::vector<LineResult> results(lines.size());
  parallel_for(lines.size(), thread_count(o.threads), [&](size_t i) {
    results[i] = process_line(lines[i], path, int64_t(i) + 1, tok, vocab_size, o);
    std::string().swap(lines[i]);
  });

  Dataset d;
  d.max_seq_len = o.tokens.max_seq_len;
  auto& s = d.stats;
  BadLines bad(path, o.jsonl.skip_bad_lines);
  for (auto& r : results) {
    if (r.outcome == Outcome::Blank) continue;
    if (r.outcome == Outcome::OverlengthError) throw UserError(r.error);
    if (r.outcome == Outcome::Bad) {
      bad.add(r.error);
      continue;
    }
    ++s.records;
    ++s.records_by_kind[kind_name(r.kind)];
    if (r.outcome == Outcome::DroppedOverlength) { ++s.dropped_overlength; continue; }
    if (r.outcome == Outcome::DroppedNoTarget) { ++s.dropped_no_target; continue; }
    if (r.outcome == Outcome::Truncated) ++s.truncated;
    s.tokens += int64_t(r.example.input_ids.size());
    s.target_tokens += r.example.target_count();
    s.longest = std::max<int64_t>(s.longest, int64_t(r.example.input_ids.size()));
    d.examples.push_back(std::move(r.example));
  }
  s.skipped_lines = bad.count();
  bad.finish(s.records);
  HYFT_CHECK(!d.examples.empty(), path, ": no example left: ", s.dropped_overlength, " longer than max_seq_len ",
             o.tokens.max_seq_len, " were dropped and ", s.dropped_no_target,
             " had no target token left; raise --max-seq-len or use --overlength truncate");
  return d;
}

std::pair<std::vector<Example>, std::vector<Example>> split_holdout(std::vector<Example> examples, double fraction,
                                                                    uint64_t seed) {
  HYFT_CHECK(fraction > 0 && fraction < 1, "--eval-split must be in (0, 1), got ", fraction);
  HYFT_CHECK(examples.size() >= 2, "--eval-split needs at least 2 examples");
  const auto order = permutation(examples.size(), seed, /*stream=*/0x5eed);
  const size_t n_eval = std::clamp<size_t>(size_t(double(examples.size()) * fraction + 0.5), 1, examples.size() - 1);
  std::vector<bool> is_eval(examples.size(), false);
  for (size_t i = 0; i < n_eval; ++i) is_eval[order[i]] = true;
  std::pair<std::vector<Example>, std::vector<Example>> out;
  for (size_t i = 0; i < examples.size(); ++i) (is_eval[i] ? out.second : out.first).push_back(std::move(examples[i]));
  return out;
}

}  // namespace hyft::data
