// Data pipeline: each record kind's exact ids and labels, the length policy and
// its counts, packing, the samplers, the held-out split and bad input.
#include "support/catch.h"
#include "support/process.h"

#include "common/error.h"
#include "common/strings.h"
#include "data/dataset.h"
#include "data/dataset_cache.h"
#include "data/packing.h"
#include "data/sampler.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace hyft;
using data::Example;

namespace {

const tokenizer::Tokenizer& tok() {
  static const tokenizer::Tokenizer t(std::string(HYFT_FIXTURES) + "/tokenizer/test.model");
  return t;
}

std::string write_jsonl(const std::string& name, const std::vector<std::string>& lines) {
  const std::string path = test::temp_dir("data") + "/" + name;
  std::ofstream f(path);
  for (const auto& l : lines) f << l << "\n";
  return path;
}

data::Dataset load(const std::vector<std::string>& lines, data::DatasetOptions o = {}) {
  return data::load_dataset(write_jsonl("d.jsonl", lines), &tok(), tok().vocab_size(), o);
}

// The expected sequence, built from literal template text: (text, trainable) parts
// between BOS and EOS markers. The text between two special tokens is one string,
// encoded whole as transformers encodes it: for text and completion records the
// first one starts the input (SentencePiece's "▁" prefix), for chat records (and
// after any special token) it does not.
struct Expect {
  struct Part {
    std::string text;
    bool trainable = false;
    int64_t special = -1;  // a BOS/EOS id instead of text
  };
  bool chat = false;
  std::vector<Part> parts;
  Expect& bos() { return special(tok().bos_id().value()); }
  Expect& eos() { return special(tok().eos_id().value()); }
  Expect& special(int64_t id) {
    parts.push_back({"", false, id});
    return *this;
  }
  Expect& text(const std::string& s, bool trainable) {
    parts.push_back({s, trainable, -1});
    return *this;
  }
};

// Ids as one encoding per run of text; each run's trainable tokens decode to its
// trainable text and the others to its prompt text; EOS carries the loss, BOS not.
void require_example(const Example& ex, const Expect& e) {
  std::vector<int64_t> ids;
  std::vector<std::pair<std::string, std::string>> runs;  // (prompt text, trainable text) per run
  bool first_run = !e.chat;
  std::string run, trained;
  auto flush = [&] {
    if (run.empty()) return;
    const auto enc = first_run ? tok().encode(run) : tok().encode_spans(run, false).ids;
    ids.insert(ids.end(), enc.begin(), enc.end());
    runs.push_back({run, trained});
    run.clear();
    trained.clear();
    first_run = false;
  };
  for (const auto& p : e.parts) {
    if (p.special >= 0) {
      flush();
      ids.push_back(p.special);
    } else {
      run += p.text;
      if (p.trainable) trained += p.text;
    }
  }
  flush();
  REQUIRE(ex.input_ids == ids);
  // Labels: walk the ids again, run by run.
  size_t t = 0, r = 0;
  while (t < ids.size()) {
    const bool is_special = ids[t] == tok().bos_id().value() || ids[t] == tok().eos_id().value();
    if (is_special) {
      REQUIRE(ex.labels[t] == (ids[t] == tok().eos_id().value() ? ids[t] : kIgnoreIndex));
      ++t;
      continue;
    }
    std::vector<int64_t> target, context;
    for (; t < ids.size() && ids[t] != tok().bos_id().value() && ids[t] != tok().eos_id().value(); ++t)
      (ex.labels[t] == kIgnoreIndex ? context : target).push_back(ids[t]);
    REQUIRE(r < runs.size());
    INFO("run '" << runs[r].first << "'");
    REQUIRE(trim(tok().decode(target)) == trim(runs[r].second));
    ++r;
  }
}
std::string json_line(const nlohmann::json& j) { return j.dump(); }

// A system prompt and two user/assistant turns.
std::string two_turn_chat() {
  return json_line({{"messages", {{{"role", "system"}, {"content", "Be brief."}},
                                  {{"role", "user"}, {"content", "Hi"}},
                                  {{"role", "assistant"}, {"content", "Hello."}},
                                  {{"role", "user"}, {"content", "Bye"}},
                                  {{"role", "assistant"}, {"content", "Goodbye."}}}}});
}

}  // namespace

TEST_CASE("each record kind gives the exact ids and labels", "[data]") {
  const std::string alpaca_head =
      "Below is an instruction that describes a task. Write a response that appropriately completes the "
      "request.\n\n### Instruction:\n";
  const std::string alpaca_head_input =
      "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
      "response that appropriately completes the request.\n\n### Instruction:\n";
  const auto d = load({
      json_line({{"text", "The quick brown fox."}}),
      json_line({{"prompt", "用户画像: 是否高风险?"}, {"completion", "低风险"}}),
      json_line({{"instruction", "Name a colour."}, {"input", ""}, {"output", "Blue."}}),
      json_line({{"instruction", "Add."}, {"input", "2 and 3"}, {"output", "5"}}),
      two_turn_chat(),
      json_line({{"input_ids", {5, 6, 7}}, {"labels", {-100, 6, 7}}}),
      json_line({{"input_ids", {8, 9}}}),
  });
  REQUIRE(d.examples.size() == 7);
  require_example(d.examples[0], Expect().bos().text("The quick brown fox.", true).eos());
  require_example(d.examples[1], Expect().bos().text("用户画像: 是否高风险?", false).text("低风险", true).eos());
  require_example(d.examples[2], Expect()
                                     .bos()
                                     .text(alpaca_head + "Name a colour.\n\n### Response:\n", false)
                                     .text("Blue.", true)
                                     .eos());
  require_example(d.examples[3], Expect()
                                     .bos()
                                     .text(alpaca_head_input + "Add.\n\n### Input:\n2 and 3\n\n### Response:\n", false)
                                     .text("5", true)
                                     .eos());
  Expect chat;
  chat.chat = true;
  require_example(d.examples[4], chat
                                     .bos()
                                     .text("<|im_start|>system\nBe brief.<|im_end|>\n", false)
                                     .text("<|im_start|>user\nHi<|im_end|>\n", false)
                                     .text("<|im_start|>assistant\n", false)
                                     .text("Hello.<|im_end|>", true)
                                     .eos()
                                     .text("\n", false)
                                     .text("<|im_start|>user\nBye<|im_end|>\n", false)
                                     .text("<|im_start|>assistant\n", false)
                                     .text("Goodbye.<|im_end|>", true)
                                     .eos());
  REQUIRE(d.examples[5].input_ids == std::vector<int64_t>{5, 6, 7});
  REQUIRE(d.examples[5].labels == std::vector<int64_t>{-100, 6, 7});
  REQUIRE(d.examples[6].labels == std::vector<int64_t>{8, 9});
  REQUIRE(d.stats.records_by_kind.at("messages") == 1);
  REQUIRE(d.stats.records_by_kind.at("alpaca") == 2);

  // EOS is never masked, whatever the kind.
  const int64_t eos = tok().eos_id().value();
  for (size_t i = 0; i < 5; ++i)
    for (size_t t = 0; t < d.examples[i].input_ids.size(); ++t)
      if (d.examples[i].input_ids[t] == eos) REQUIRE(d.examples[i].labels[t] == eos);
}

TEST_CASE("llama2 and alpaca chat templates", "[data]") {
  data::DatasetOptions o;
  const std::string msgs = json_line({{"messages", {{{"role", "system"}, {"content", "S"}},
                                                    {{"role", "user"}, {"content", "Q1"}},
                                                    {{"role", "assistant"}, {"content", "A1"}},
                                                    {{"role", "user"}, {"content", "Q2"}},
                                                    {{"role", "assistant"}, {"content", "A2"}}}}});
  o.records.chat_template = "llama2";
  Expect llama2, alpaca;
  llama2.chat = alpaca.chat = true;
  require_example(load({msgs}, o).examples[0], llama2
                                                   .bos()
                                                   .text("[INST] <<SYS>>\nS\n<</SYS>>\n\nQ1 [/INST]", false)
                                                   .text(" A1 ", true)
                                                   .eos()
                                                   .bos()
                                                   .text("[INST] Q2 [/INST]", false)
                                                   .text(" A2 ", true)
                                                   .eos());
  o.records.chat_template = "alpaca";
  require_example(load({msgs}, o).examples[0], alpaca
                                                   .bos()
                                                   .text("S\n\n### Instruction:\nQ1\n\n### Response:\n", false)
                                                   .text("A1", true)
                                                   .eos()
                                                   .text("\n\n### Instruction:\nQ2\n\n### Response:\n", false)
                                                   .text("A2", true)
                                                   .eos());
}

TEST_CASE("--train-on-prompt puts the loss on prompts too", "[data]") {
  data::DatasetOptions o;
  o.tokens.train_on_prompt = true;
  const auto d = load({json_line({{"prompt", "question"}, {"completion", "answer"}})}, o);
  require_example(d.examples[0], Expect().bos().text("question", true).text("answer", true).eos());
}

TEST_CASE("the length policy truncates, drops or refuses, with counts", "[data]") {
  const std::string long_text = json_line({{"text", std::string(400, 'x') + " the end"}});
  const std::string short_text = json_line({{"text", "short"}});
  const std::string long_prompt = json_line({{"prompt", std::string(300, 'y')}, {"completion", "z"}});
  data::DatasetOptions o;
  o.tokens.max_seq_len = 32;
  auto d = load({long_text, short_text, long_prompt}, o);
  REQUIRE(d.stats.truncated == 1);           // the long text, cut to 32
  REQUIRE(d.stats.dropped_no_target == 1);   // the prompt filled all 32 tokens
  REQUIRE(d.examples.size() == 2);
  REQUIRE(d.examples[0].input_ids.size() == 32);
  std::vector<int64_t> full = {tok().bos_id().value()};
  for (int64_t id : tok().encode(std::string(400, 'x') + " the end")) full.push_back(id);
  REQUIRE(d.examples[0].input_ids == std::vector<int64_t>(full.begin(), full.begin() + 32));
  o.tokens.overlength = data::Overlength::Drop;
  d = load({long_text, short_text, long_prompt}, o);
  REQUIRE(d.stats.dropped_overlength == 2);
  REQUIRE(d.examples.size() == 1);
  o.tokens.overlength = data::Overlength::Error;
  std::string msg;
  try {
    load({short_text, long_text}, o);
  } catch (const UserError& e) {
    msg = e.what();
  }
  REQUIRE(msg.find("d.jsonl:2:") != std::string::npos);
  REQUIRE(msg.find("exceed max_seq_len 32") != std::string::npos);
}

TEST_CASE("bad input gives FILE:LINE: reason, or is skipped and counted", "[data]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"text\": \"ok\"", "not valid JSON"},
      {"{\"prompt\": \"p\"}", "missing field 'completion'"},
      {"{\"completion\": 3, \"prompt\": \"p\"}", "'completion' must be a string"},
      {"{\"text\": \"\xc3\x28\"}", "invalid UTF-8"},
      {"[1, 2]", "expected a JSON object"},
      {"{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "role 'robot'"},
      {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "no assistant turn"},
      {"{\"text\": \"x\", \"weight\": -1}", "'weight' must be a number > 0"},
      {"{\"text\": \"x\", \"label\": [1]}", "label field 'label'"},
      {"{\"other\": 1}", "no known record kind"},
  };
  for (const auto& [line, reason] : cases) {
    const std::string path = write_jsonl("bad.jsonl", {json_line({{"text", "fine"}}), line});
    std::string msg;
    try {
      data::load_dataset(path, &tok(), tok().vocab_size(), {});
    } catch (const UserError& e) {
      msg = e.what();
    }
    INFO(line << " -> " << msg);
    REQUIRE(msg.find(path + ":2: ") != std::string::npos);
    REQUIRE(msg.find(reason) != std::string::npos);
    data::DatasetOptions skip;
    skip.jsonl.skip_bad_lines = true;
    const auto d = data::load_dataset(path, &tok(), tok().vocab_size(), skip);
    REQUIRE(d.stats.skipped_lines == 1);
    REQUIRE(d.examples.size() == 1);
  }
  std::string msg;
  try {
    data::load_dataset(write_jsonl("empty.jsonl", {"", "  "}), &tok(), tok().vocab_size(), {});
  } catch (const UserError& e) {
    msg = e.what();
  }
  REQUIRE(msg.find("empty") != std::string::npos);
}

TEST_CASE("packing keeps documents apart and loses no token", "[data]") {
  std::vector<Example> docs;
  for (int i = 0; i < 40; ++i) {
    Example ex;
    const int n = 2 + (i * 7) % 13;
    for (int t = 0; t < n; ++t) {
      ex.input_ids.push_back(1000 * i + t);
      ex.labels.push_back(1000 * i + t);
    }
    docs.push_back(ex);
  }
  std::vector<const Example*> ptrs;
  for (const auto& d : docs) ptrs.push_back(&d);
  const auto rows = data::pack(ptrs, 32);
  std::vector<int64_t> all_in, all_out;
  for (const auto& d : docs) all_in.insert(all_in.end(), d.input_ids.begin(), d.input_ids.end());
  int64_t docs_seen = 0;
  for (const auto& row : rows) {
    REQUIRE(int64_t(row.input_ids.size()) <= 32);
    all_out.insert(all_out.end(), row.input_ids.begin(), row.input_ids.end());
    for (size_t t = 0; t < row.input_ids.size(); ++t) {
      const bool starts = t == 0 || row.document_ids[t] != row.document_ids[t - 1];
      REQUIRE(row.position_ids[t] == (starts ? 0 : row.position_ids[t - 1] + 1));  // positions restart
      REQUIRE(row.input_ids[t] % 1000 == row.position_ids[t]);
      if (starts) REQUIRE(row.labels[t] == -100);  // no prediction across the boundary
      else REQUIRE(row.labels[t] == row.input_ids[t]);
    }
    docs_seen += row.documents;
  }
  std::sort(all_in.begin(), all_in.end());
  std::sort(all_out.begin(), all_out.end());
  REQUIRE(all_out == all_in);  // nothing lost, nothing duplicated
  REQUIRE(docs_seen == 40);
  // First fit needs fewer rows than filling one row at a time in order.
  int64_t in_order = 1, used = 0;
  for (const auto& d : docs) {
    const int64_t n = int64_t(d.input_ids.size());
    if (used + n > 32) ++in_order, used = 0;
    used += n;
  }
  std::printf("packing 40 documents into rows of 32: first fit %zu rows, in order %lld\n", rows.size(),
              static_cast<long long>(in_order));
  REQUIRE(int64_t(rows.size()) < in_order);
}

TEST_CASE("weighted and balanced sampling draw at the intended frequencies", "[data]") {
  std::vector<Example> ex(10);
  for (size_t i = 0; i < ex.size(); ++i) {
    ex[i].input_ids = {1, 2};
    ex[i].labels = {1, 2};
    ex[i].weight = double(i + 1);
    ex[i].label = i < 8 ? "low" : "high";  // 8 : 2 imbalance
  }
  const int draws = 100000;
  for (auto kind : {data::SamplingKind::Weighted, data::SamplingKind::Balanced, data::SamplingKind::Uniform}) {
    data::SamplerOptions o;
    o.kind = kind;
    o.seed = 42;
    data::Sampler s(ex, o);
    std::vector<int> counts(ex.size(), 0);
    for (int i = 0; i < draws; ++i) ++counts[size_t(s.next())];
    for (size_t i = 0; i < ex.size(); ++i) {
      const double expected = kind == data::SamplingKind::Weighted ? double(i + 1) / 55.0
                              : kind == data::SamplingKind::Balanced ? (i < 8 ? 0.5 / 8 : 0.5 / 2)
                                                                     : 0.1;
      INFO(data::sampling_name(kind) << " example " << i);
      REQUIRE(std::abs(double(counts[i]) / draws - expected) < 0.01);
      REQUIRE(std::abs(s.probabilities()[i] - expected) < 1e-12);
    }
  }
  // Balanced: each class is equally likely; power 0 gives uniform probabilities.
  const auto labels = data::label_distribution(ex, data::sampling_probabilities(ex, data::SamplingKind::Balanced, 1.0));
  REQUIRE(std::abs(labels.at("low").second - 0.5) < 1e-12);
  REQUIRE(std::abs(labels.at("high").second - 0.5) < 1e-12);
  const auto p0 = data::sampling_probabilities(ex, data::SamplingKind::Balanced, 0.0);
  for (double p : p0) REQUIRE(std::abs(p - 0.1) < 1e-12);
  // Half power: weight 1/sqrt(count).
  const auto half = data::label_distribution(ex, data::sampling_probabilities(ex, data::SamplingKind::Balanced, 0.5));
  REQUIRE(std::abs(half.at("high").second - (2 / std::sqrt(2.0)) / (2 / std::sqrt(2.0) + 8 / std::sqrt(8.0))) < 1e-12);
  ex[3].label.reset();
  REQUIRE_THROWS_AS(data::sampling_probabilities(ex, data::SamplingKind::Balanced, 1.0), UserError);
}

TEST_CASE("a sampler saved mid-epoch continues identically; ranks are disjoint", "[data]") {
  std::vector<Example> ex(37);
  for (auto& e : ex) e.label = "a", e.input_ids = e.labels = {1, 2};
  for (auto kind : {data::SamplingKind::Uniform, data::SamplingKind::Weighted}) {
    data::SamplerOptions o;
    o.kind = kind;
    o.seed = 7;
    data::Sampler a(ex, o);
    std::vector<int64_t> first;
    for (int i = 0; i < 100; ++i) first.push_back(a.next());  // ends mid-epoch 2
    const auto state = a.state();
    std::vector<int64_t> rest_a, rest_b;
    for (int i = 0; i < 80; ++i) rest_a.push_back(a.next());
    data::Sampler b(ex, o);
    b.restore(state);
    for (int i = 0; i < 80; ++i) rest_b.push_back(b.next());
    REQUIRE(rest_a == rest_b);
    // Same seed, same sequence; another seed, another one.
    data::Sampler c(ex, o);
    std::vector<int64_t> again;
    for (int i = 0; i < 100; ++i) again.push_back(c.next());
    REQUIRE(again == first);
    o.seed = 8;
    data::Sampler d(ex, o);
    std::vector<int64_t> other;
    for (int i = 0; i < 100; ++i) other.push_back(d.next());
    REQUIRE(other != first);
  }
  // Uniform: each epoch is a permutation; three ranks split it without overlap.
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::multiset<int64_t> seen;
    for (int64_t rank = 0; rank < 3; ++rank) {
      data::SamplerOptions o;
      o.seed = 3;
      o.rank = rank;
      o.world = 3;
      data::Sampler s(ex, o);
      s.restore({epoch * int64_t(ex.size()) + rank});
      while (s.state().position < (epoch + 1) * int64_t(ex.size())) seen.insert(s.next());
    }
    REQUIRE(seen.size() == ex.size());
    REQUIRE(std::set<int64_t>(seen.begin(), seen.end()).size() == ex.size());
  }
}

TEST_CASE("the draws are one global sequence whatever the number of ranks", "[data]") {
  std::vector<Example> ex(23);
  for (auto& e : ex) e.input_ids = e.labels = {1, 2};
  data::SamplerOptions o;
  o.seed = 5;
  data::Sampler one(ex, o);
  std::vector<int64_t> sequence;  // 4 epochs, one rank
  for (int i = 0; i < 92; ++i) sequence.push_back(one.next());
  // 2 ranks drawing 3 each per step take what 1 rank drawing 6 takes, step by step.
  o.world = 2;
  std::vector<data::Sampler> ranks;
  for (int64_t r = 0; r < 2; ++r) {
    o.rank = r;
    ranks.emplace_back(ex, o);
  }
  for (int step = 0; step < 15; ++step) {
    std::multiset<int64_t> a, b(sequence.begin() + step * 6, sequence.begin() + step * 6 + 6);
    for (auto& s : ranks)
      for (int i = 0; i < 3; ++i) a.insert(s.next());
    REQUIRE(a == b);
  }
}

TEST_CASE("draws saved by some ranks are re-dealt to another number of ranks", "[data]") {
  const auto identity = [](int64_t p) { return p; };  // pending entries are then positions
  // In step (fixed batches): 3 ranks drew 5 each; 2 ranks continue at position 15.
  std::vector<data::RankDraws> saved = {{15, {}}, {16, {}}, {17, {}}};
  auto out = data::reshard_draws(saved, 2, identity);
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].position == 15);
  REQUIRE(out[1].position == 16);
  REQUIRE(out[0].pending.empty());
  REQUIRE(data::reshard_draws(saved, 3, identity)[2].position == 17);  // same count: unchanged
  // Unequal counts (packing): 3 ranks drew 4, 7 and 5 draws, two wait with examples.
  saved = {{0 + 4 * 3, {100}}, {1 + 7 * 3, {}}, {2 + 5 * 3, {101, 102}}};
  out = data::reshard_draws(saved, 2, identity);
  std::multiset<int64_t> covered;  // drawn before, waiting, or drawn next: each position once
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t p = r; p < saved[size_t(r)].position; p += 3) covered.insert(p);
  for (const auto& r : out) covered.insert(r.pending.begin(), r.pending.end());
  const int64_t end = out[0].position + 2 * 10;
  for (const auto& r : out)
    for (int64_t p = r.position; p < end; p += 2) covered.insert(p);
  std::multiset<int64_t> expected = {100, 101, 102};
  for (int64_t p = 0; p < end; ++p) expected.insert(p);
  REQUIRE(covered == expected);
  // The 3 waiting, and the 6 positions below 22 that ranks 0 and 2 had not reached.
  REQUIRE(out[0].pending.size() + out[1].pending.size() == 3 + 6);
}

TEST_CASE("the held-out split is deterministic and disjoint", "[data]") {
  std::vector<Example> ex(50);
  for (size_t i = 0; i < ex.size(); ++i) ex[i].line = int64_t(i) + 1;
  const auto [train, eval] = data::split_holdout(ex, 0.2, 11);
  REQUIRE(eval.size() == 10);
  REQUIRE(train.size() == 40);
  std::set<int64_t> lines;
  for (const auto& e : train) lines.insert(e.line);
  for (const auto& e : eval) REQUIRE(lines.insert(e.line).second);
  const auto again = data::split_holdout(ex, 0.2, 11);
  for (size_t i = 0; i < eval.size(); ++i) REQUIRE(again.second[i].line == eval[i].line);
  std::vector<int64_t> lines_11, lines_12;
  for (const auto& e : eval) lines_11.push_back(e.line);
  for (const auto& e : data::split_holdout(ex, 0.2, 12).second) lines_12.push_back(e.line);
  REQUIRE(lines_11 != lines_12);
}

TEST_CASE("hyft data stats shows equal class probabilities under balanced sampling", "[data]") {
  std::vector<std::string> lines;
  for (int i = 0; i < 200; ++i)
    lines.push_back(json_line({{"prompt", "case " + std::to_string(i)}, {"completion", i % 20 ? "low" : "high"},
                               {"label", i % 20 ? "low" : "high"}}));
  lines.push_back(json_line({{"text", std::string(3000, 'q')}, {"label", "low"}}));
  const std::string path = write_jsonl("stats.jsonl", lines);
  const std::string args = "data stats --json --data " + test::quote(path) + " --tokenizer " +
                           test::quote(std::string(HYFT_FIXTURES) + "/tokenizer/test.model") + " --max-seq-len 64";
  auto r = test::run_hyft(args + " --sampling balanced");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["records"] == 201);
  REQUIRE(j["truncated"] == 1);
  REQUIRE(j["labels"]["high"]["count"] == 10);
  REQUIRE(j["labels"]["low"]["count"] == 191);
  REQUIRE(std::abs(j["labels"]["high"]["probability"].get<double>() - 0.5) < 1e-9);
  REQUIRE(std::abs(j["labels"]["low"]["probability"].get<double>() - 0.5) < 1e-9);
  r = test::run_hyft(args + " --sampling uniform");
  j = nlohmann::json::parse(r.out);
  REQUIRE(std::abs(j["labels"]["high"]["probability"].get<double>() - 10.0 / 201) < 1e-9);
  r = test::run_hyft(args + " --overlength drop");
  REQUIRE(nlohmann::json::parse(r.out)["dropped_overlength"] == 1);
  // Human-readable output names the same figures.
  r = test::run_hyft("data stats --data " + test::quote(path) + " --tokenizer " +
                     test::quote(std::string(HYFT_FIXTURES) + "/tokenizer/test.model") + " --sampling balanced");
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("50.00%") != std::string::npos);
  REQUIRE(test::run_hyft("data stats --data " + test::quote(path) + " --sampling sideways").exit_code == 2);
}

TEST_CASE("the incremental packer stops at the row limit and agrees with pack()", "[data]") {
  std::vector<Example> docs(30);
  for (size_t i = 0; i < docs.size(); ++i) {
    docs[i].input_ids.assign(3 + (i * 5) % 11, int64_t(i));
    docs[i].labels = docs[i].input_ids;
  }
  data::RowPacker packer(16, 3);
  std::vector<const Example*> taken;
  size_t i = 0;
  while (i < docs.size() && packer.add(&docs[i])) taken.push_back(&docs[i++]);
  REQUIRE(i < docs.size());  // it refused one before the end
  const auto rows = packer.rows();
  REQUIRE(rows.size() == 3);
  REQUIRE(data::pack(taken, 16).size() == 3);
  taken.push_back(&docs[i]);
  REQUIRE(data::pack(taken, 16).size() == 4);  // the refused document needed a fourth row
}

TEST_CASE("the tokenized-data cache returns the same dataset and follows its inputs", "[data]") {
  const std::string path = write_jsonl("cached.jsonl", {json_line({{"text", "alpha beta"}, {"label", "a"}}),
                                                        json_line({{"prompt", "p"}, {"completion", "c"}, {"weight", 2.5}})});
  data::DatasetOptions o;
  o.cache_dir = test::temp_dir("data_cache");
  const auto first = data::load_dataset(path, &tok(), tok().vocab_size(), o);
  const std::string cache = data::dataset_cache_path(o.cache_dir, path, &tok(), tok().vocab_size(), o);
  REQUIRE(std::filesystem::exists(cache));
  const auto second = data::load_dataset(path, &tok(), tok().vocab_size(), o);  // from the cache
  REQUIRE(second.examples.size() == first.examples.size());
  for (size_t i = 0; i < first.examples.size(); ++i) {
    REQUIRE(second.examples[i].input_ids == first.examples[i].input_ids);
    REQUIRE(second.examples[i].labels == first.examples[i].labels);
    REQUIRE(second.examples[i].weight == first.examples[i].weight);
    REQUIRE(second.examples[i].label == first.examples[i].label);
    REQUIRE(second.examples[i].line == first.examples[i].line);
  }
  REQUIRE(second.stats.records_by_kind == first.stats.records_by_kind);
  REQUIRE(second.stats.tokens == first.stats.tokens);
  // Other settings, another entry; a damaged entry is rebuilt.
  data::DatasetOptions shorter = o;
  shorter.tokens.max_seq_len = 3;
  REQUIRE(data::dataset_cache_path(o.cache_dir, path, &tok(), tok().vocab_size(), shorter) != cache);
  std::ofstream(cache, std::ios::binary | std::ios::trunc) << "HYFTDS03garbage";
  REQUIRE(data::load_dataset(path, &tok(), tok().vocab_size(), o).examples.size() == first.examples.size());
  REQUIRE(data::read_dataset_cache(cache).has_value());  // rewritten whole
  // One flipped byte anywhere (a count, a statistic) is caught by the checksum before any field is
  // trusted: the entry is rebuilt, never read.
  for (const size_t at : {size_t(8 + 8 * 8 + 3), size_t(40)}) {
    std::string bytes = test::read_text(cache);
    bytes[at] = char(bytes[at] ^ 0x5a);
    std::ofstream(cache, std::ios::binary | std::ios::trunc) << bytes;
    REQUIRE_FALSE(data::read_dataset_cache(cache).has_value());
    const auto rebuilt = data::load_dataset(path, &tok(), tok().vocab_size(), o);
    REQUIRE(rebuilt.examples.size() == first.examples.size());
    REQUIRE(rebuilt.examples[1].labels == first.examples[1].labels);
    REQUIRE(data::read_dataset_cache(cache).has_value());
  }
}

TEST_CASE("hyft data render + scripts/tokenize_with_hf.py rebuild hyft's own examples", "[data]") {
  const std::vector<std::string> lines = {
      json_line({{"text", "The quick brown fox."}, {"label", "x"}}),
      json_line({{"prompt", "用户画像: 是否高风险?"}, {"completion", "低风险"}, {"weight", 3.0}}),
      json_line({{"instruction", "Add."}, {"input", "2 and 3"}, {"output", "5"}}),
      two_turn_chat(),
      json_line({{"input_ids", {5, 6, 7}}, {"labels", {-100, 6, 7}}}),
  };
  const std::string src = write_jsonl("render_src.jsonl", lines);
  const std::string dir = test::temp_dir("render");
  const std::string model = std::string(HYFT_FIXTURES) + "/tokenizer/test.model";
  for (const std::string tmpl : {"chatml", "llama2"}) {
    auto r = test::run_hyft("data render --data " + test::quote(src) + " --chat-template " + tmpl + " --output " +
                            test::quote(dir + "/rendered.jsonl") + " --force");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    r = test::run_python(test::quote(std::string(HYFT_SOURCE_DIR) + "/scripts/tokenize_with_hf.py") + " " +
                         test::quote(dir + "/rendered.jsonl") + " " + test::quote(dir + "/tok.jsonl") + " --tokenizer " +
                         test::quote(model));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    data::DatasetOptions o;
    o.records.chat_template = tmpl;
    const auto ours = data::load_dataset(src, &tok(), tok().vocab_size(), o);
    const auto theirs = data::load_dataset(dir + "/tok.jsonl", nullptr, tok().vocab_size(), o);
    REQUIRE(theirs.examples.size() == ours.examples.size());
    for (size_t i = 0; i < ours.examples.size(); ++i) {
      INFO(tmpl << " record " << i);
      REQUIRE(theirs.examples[i].input_ids == ours.examples[i].input_ids);
      REQUIRE(theirs.examples[i].labels == ours.examples[i].labels);
      REQUIRE(theirs.examples[i].weight == ours.examples[i].weight);
      REQUIRE(theirs.examples[i].label == ours.examples[i].label);
    }
  }
}

TEST_CASE("records tokenize as transformers tokenizes them (AutoTokenizer, apply_chat_template)", "[data]") {
  // Folders made by `hyft model init` with each chat template; transformers reads
  // their tokenizer_config.json. Text and completion records must equal
  // tokenizer(text) + EOS (the prompt and completion encoded as one string), chat
  // records apply_chat_template(messages).
  const std::string dir = test::temp_dir("hf_tokenize");
  const std::string tok_path = std::string(HYFT_FIXTURES) + "/tokenizer/test.model";
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 2, "max_position_embeddings": 64})";
  const std::string data = write_jsonl("hf.jsonl", {
      json_line({{"text", "The quick brown fox."}}),
      json_line({{"prompt", "Answer:"}, {"completion", " A coconut"}}),
      json_line({{"prompt", "用户画像: 是否高风险?"}, {"completion", "低风险"}}),
      json_line({{"prompt", "Q: 2+2="}, {"completion", "4"}}),
      two_turn_chat(),
      json_line({{"messages", {{{"role", "user"}, {"content", "What is green?"}},
                               {{"role", "assistant"}, {"content", " A lime is green."}}}}}),
  });
  for (const std::string templ : {"chatml", "llama2", "alpaca"}) {
    const std::string model = dir + "/" + templ;
    auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                            test::quote(tok_path) + " --chat-template " + templ + " --output " + test::quote(model));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    r = test::run_hyft("data render --data " + test::quote(data) + " --model " + test::quote(model) +
                       " --chat-template " + templ);
    REQUIRE(r.exit_code == 0);
    std::vector<nlohmann::json> ours;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) ours.push_back(nlohmann::json::parse(line));
    const auto ref = test::run_python(test::quote(std::string(HYFT_SOURCE_DIR) + "/test/python/hf_reference.py") +
                                      " hf-tokenize " + test::quote(model) + " " + test::quote(data));
    INFO(ref.err);
    REQUIRE(ref.exit_code == 0);
    const auto theirs = nlohmann::json::parse(ref.out);
    REQUIRE(ours.size() == theirs["ids"].size());
    for (size_t i = 0; i < ours.size(); ++i) {
      INFO(templ << " record " << i + 1 << " (" << ours[i]["kind"] << ")");
      REQUIRE(ours[i]["input_ids"] == theirs["ids"][i]);
    }
    std::printf("%s: %zu records, ids equal to %s's\n", templ.c_str(), ours.size(),
                theirs["class"].get<std::string>().c_str());
  }
}
