// Tokenizer: ids equal those of the Python sentencepiece package on a varied
// corpus, and `hyft tokenizer train` writes a model both can read.
#include "support/catch.h"
#include "support/process.h"

#include "common/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>

using namespace hyft;
namespace fs = std::filesystem;

namespace {
std::string test_model() { return std::string(HYFT_FIXTURES) + "/tokenizer/test.model"; }
}  // namespace

TEST_CASE("token ids equal the Python sentencepiece package's", "[tokenizer]") {
  const std::vector<std::string> texts = {
      "",
      " ",
      "Hello world",
      "  leading and trailing spaces  ",
      "Whitespace   runs\tand\t\ttabs\n\nnew lines",
      "Café naïve façade Ångström Zürich",
      "数据集中的每一行都是一个 JSON 对象。",
      "用户画像 + 交易记录 + 是否高风险?",
      "東京は日本の首都です。한국어",
      "Emoji 😀🚀🔥 👍🏽 🇨🇳 unseen: 🦜🧬",
      "∑ ∫ √ ≤ ≥ ≠ € ¥ £",
      "numbers 1234567890 3.14159",
      "def f(x):\n    return x ** 2",
      "a\u00a0non-breaking\u2009thin space",
      "zzzzqqqq xyzzy unusual tokens",
  };
  const tokenizer::Tokenizer tok(test_model());
  const std::string dir = test::temp_dir("tokenizer_parity");
  nlohmann::json j = texts;
  std::ofstream(dir + "/texts.json") << j.dump();
  std::ofstream(dir + "/encode.py") << "import json, sys, sentencepiece as spm\n"
                                       "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
                                       "texts = json.load(open(sys.argv[2]))\n"
                                       "print(json.dumps({'ids': [sp.encode(t) for t in texts],"
                                       " 'decoded': [sp.decode(sp.encode(t)) for t in texts],"
                                       " 'vocab': sp.vocab_size(), 'bos': sp.bos_id(), 'eos': sp.eos_id()}))\n";
  const auto r = test::run_python(test::quote(dir + "/encode.py") + " " + test::quote(test_model()) + " " +
                                  test::quote(dir + "/texts.json"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto py = nlohmann::json::parse(r.out);
  REQUIRE(py["vocab"].get<int64_t>() == tok.vocab_size());
  REQUIRE(py["bos"].get<int64_t>() == tok.bos_id().value());
  REQUIRE(py["eos"].get<int64_t>() == tok.eos_id().value());
  int64_t total = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ours = tok.encode(texts[i]);
    INFO("text " << i << ": " << texts[i]);
    REQUIRE(ours == py["ids"][i].get<std::vector<int64_t>>());
    REQUIRE(tok.decode(ours) == py["decoded"][i].get<std::string>());
    total += int64_t(ours.size());
  }
  REQUIRE(total > 100);
  REQUIRE(tok.encode("").empty());
}

TEST_CASE("a missing or broken tokenizer is a clear error", "[tokenizer]") {
  REQUIRE_THROWS_AS(tokenizer::Tokenizer("/nonexistent.model"), UserError);
  const std::string dir = test::temp_dir("bad_tokenizer");
  std::ofstream(dir + "/bad.model") << "not a model";
  REQUIRE_THROWS_AS(tokenizer::Tokenizer(dir + "/bad.model"), UserError);
  std::string msg;
  try {
    tokenizer::load_tokenizer(dir);
  } catch (const UserError& e) {
    msg = e.what();
  }
  REQUIRE(msg.find("--tokenizer") != std::string::npos);
}

TEST_CASE("hyft tokenizer train on JSONL writes a model", "[tokenizer]") {
  const std::string dir = test::temp_dir("tokenizer_train");
  {
    std::ofstream f(dir + "/data.jsonl");
    for (int i = 0; i < 200; ++i)
      f << nlohmann::json({{"prompt", "用户 " + std::to_string(i) + " 的交易记录"}, {"completion", i % 7 ? "低风险" : "高风险"}}).dump()
        << "\n";
  }
  const auto r = test::run_hyft("tokenizer train --input " + test::quote(dir + "/data.jsonl") +
                                " --vocab-size 320 --output " + test::quote(dir + "/tok.model"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const tokenizer::Tokenizer tok(dir + "/tok.model");
  REQUIRE(tok.decode(tok.encode("高风险")) == "高风险");
  REQUIRE(test::run_hyft("tokenizer train --input x --vocab-size 320 --output y.txt").exit_code == 2);
}

TEST_CASE("tokenizer.json (byte-level BPE) gives the ids of the tokenizers package", "[tokenizer]") {
  if (!tokenizer::bpe_supported()) {
    WARN("built without PCRE2: tokenizer.json is refused, not checked");
    return;
  }
  // BPEs trained by the tokenizers package on the test corpus in the layouts of
  // GPT-2, Llama 3, DeepSeek-LLM, DeepSeek-Coder and Qwen2, and two SentencePiece-like
  // ones with byte_fallback (Llama 2, Metaspace), then texts the training never saw.
  const std::string dir = test::temp_dir("bpe");
  const std::string script = test::quote(std::string(HYFT_SOURCE_DIR) + "/test/python/bpe_reference.py");
  auto r = test::run_python(script + " make " + test::quote(dir) + " " +
                            test::quote(std::string(HYFT_SOURCE_DIR) + "/test/data/tokenizer_corpus.txt"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::vector<std::string> texts = {
      "",
      "Hello world",
      "  leading and trailing spaces  ",
      "Whitespace   runs\tand\t\ttabs\n\nnew lines\r\nand CRLF\n",
      "Café naïve façade Ångström Zürich Ελληνικά Русский Հայերեն",
      "数据集中的每一行都是一个 JSON 对象。用户画像 + 交易记录?",
      "東京は日本の首都です。한국어 텍스트",
      "Emoji 😀🚀🔥 👍🏽 🇨🇳 👨‍👩‍👧 unseen: 🦜🧬",
      "numbers 1234567890 3.14159 and 2024-11-28",
      "def f(x):\n    return x ** 2  # square\n\nint main() { return 0; }",
      "I'm sure they'll say it's HE'S or we've: 'quoted' \"double\"",
      "<|im_start|>user\nWhat is green?<|im_end|>\n<|im_start|>assistant\nA lime.<|im_end|>",
      "special inside<|end_of_text|>text<|begin_of_text|>",
      "a\u00a0non-breaking\u2009thin space\u3000ideographic",
      "zzzzqqqq xyzzy unusual tokens ﬁ ligature Ⅻ",
      "added tokens that strip: a <mask> b, <|im_end|>   after, x<mask>y",
      "Hello HELLO hello QXJ unseen capitals and ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 byte fallback",
      "decomposed: Cafe\u0301 A\u030Angstro\u0308m, Hangul \u1100\u1161\u11A8, ﬁ ㎏ ①",
  };
  std::ofstream(dir + "/texts.json") << nlohmann::json(texts).dump();
  for (const std::string style : {"gpt2", "llama3", "deepseek", "deepseek_coder", "qwen2", "llama2", "metaspace"}) {
    const std::string path = dir + "/" + style + "/tokenizer.json";
    const tokenizer::BpeTokenizer tok(path);
    r = test::run_python(script + " encode " + test::quote(path) + " " + test::quote(dir + "/texts.json"));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto py = nlohmann::json::parse(r.out);
    REQUIRE(tok.bos_id() == py["bos"].get<int64_t>());
    int64_t total = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      INFO(style << " text " << i << ": " << texts[i]);
      const auto ours = tok.encode(texts[i]);
      REQUIRE(ours == py["ids"][i].get<std::vector<int64_t>>());
      REQUIRE(tok.decode(ours) == py["decoded"][i].get<std::string>());
      if (py["decoded"][i] == texts[i]) REQUIRE(tok.decode(ours) == texts[i]);  // where tokenizers round-trips
      for (size_t k = 0; k < ours.size(); ++k)  // prefixes: cut characters replaced as the package does
        REQUIRE(tok.decode(std::vector<int64_t>(ours.begin(), ours.begin() + int64_t(k))) ==
                py["decoded_prefixes"][i][k].get<std::string>());
      // Token ends (the loss mask's anchor) stay in the text, in order, the last at its end.
      const auto enc = tok.encode_with_ends(texts[i]);
      for (size_t k = 0; k < enc.ends.size(); ++k) REQUIRE(enc.ends[k] <= texts[i].size());
      REQUIRE(std::is_sorted(enc.ends.begin(), enc.ends.end()));
      if (!texts[i].empty()) REQUIRE(enc.ends.back() == texts[i].size());
      total += int64_t(ours.size());
    }
    std::printf("tokenizer.json %s: %zu texts, %lld ids equal to the tokenizers package's\n", style.c_str(),
                texts.size(), static_cast<long long>(total));
  }
  // Invalid UTF-8 is refused, not guessed at; a part hyft lacks is refused by name.
  const auto refusal = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const tokenizer::BpeTokenizer gpt2(dir + "/gpt2/tokenizer.json");
  REQUIRE(refusal([&] { gpt2.encode("bad \xff byte"); }).find("not valid UTF-8") != std::string::npos);
  auto j = nlohmann::json::parse(test::read_text(dir + "/gpt2/tokenizer.json"));
  j["normalizer"] = {{"type", "BertNormalizer"}};  // not implemented: refused by name
  std::ofstream(dir + "/bert.json") << j.dump();
  REQUIRE(refusal([&] { tokenizer::BpeTokenizer t(dir + "/bert.json"); }).find("normalizer \"BertNormalizer\"") !=
          std::string::npos);
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  std::ofstream(dir + "/ws.json") << j.dump();
  REQUIRE(refusal([&] { tokenizer::BpeTokenizer t(dir + "/ws.json"); }).find("'Whitespace'") != std::string::npos);
}

TEST_CASE("a model folder with only tokenizer.json: ids as transformers', fine-tunes and generates", "[tokenizer]") {
  if (!tokenizer::bpe_supported()) {
    WARN("built without PCRE2: tokenizer.json is refused, not checked");
    return;
  }
  const std::string dir = test::temp_dir("bpe_folder");
  const std::string script = std::string(HYFT_SOURCE_DIR) + "/test/python/";
  auto r = test::run_python(test::quote(script + "bpe_reference.py") + " make " + test::quote(dir + "/tok") + " " +
                            test::quote(std::string(HYFT_SOURCE_DIR) + "/test/data/tokenizer_corpus.txt"));
  REQUIRE(r.exit_code == 0);
  const tokenizer::BpeTokenizer bpe(dir + "/tok/deepseek/tokenizer.json");
  // A DeepSeek-style folder: random weights, tokenizer.json, tokenizer_config.json.
  std::ofstream(dir + "/config.json") << nlohmann::json({{"hidden_size", 16}, {"intermediate_size", 32},
                                                          {"num_hidden_layers", 1}, {"num_attention_heads", 2},
                                                          {"max_position_embeddings", 128},
                                                          {"vocab_size", bpe.vocab_size()}})
                                             .dump();
  const std::string model = dir + "/model";
  r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --output " + test::quote(model));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  fs::copy_file(dir + "/tok/deepseek/tokenizer.json", model + "/tokenizer.json");
  // DeepSeek-LLM chat's template (test/data/chat_templates), with this folder's BOS and EOS.
  std::ifstream template_file(std::string(HYFT_SOURCE_DIR) + "/test/data/chat_templates/deepseek_llm_chat.jinja");
  const std::string chat_template((std::istreambuf_iterator<char>(template_file)), std::istreambuf_iterator<char>());
  std::ofstream(model + "/tokenizer_config.json")
      << nlohmann::json({{"tokenizer_class", "PreTrainedTokenizerFast"}, {"bos_token", "<|begin_of_text|>"},
                         {"eos_token", "<|end_of_text|>"}, {"chat_template", chat_template}})
             .dump();
  std::ofstream data(dir + "/data.jsonl");
  for (const char* t : {"The quick brown fox jumps over 13 lazy dogs.", "数据集中的每一行都是一个 JSON 对象。",
                        "def f(x):\n    return x ** 2\n", "Emoji 😀 and <|im_start|>markers<|im_end|>"})
    data << nlohmann::json({{"text", t}}).dump() << "\n";
  data << nlohmann::json({{"prompt", "Q: 2+2="}, {"completion", " 4"}}).dump() << "\n";
  const nlohmann::json chats = {
      {{"role", "user"}, {"content", "What is 2 + 2?"}}, {{"role", "assistant"}, {"content", "4"}}};
  data << nlohmann::json({{"messages", chats}}).dump() << "\n";
  data << nlohmann::json({{"messages",
                           {{{"role", "system"}, {"content", "Be brief."}},
                            {{"role", "user"}, {"content", "Name a prime."}},
                            {{"role", "assistant"}, {"content", "7, or 11."}},
                            {{"role", "user"}, {"content", "数据?"}},
                            {{"role", "assistant"}, {"content", "😀 <|im_start|>ok"}}}}})
              .dump()
       << "\n";
  data.close();

  // hyft's ids (BOS, the text, EOS; chat records through the folder's own template)
  // against AutoTokenizer and apply_chat_template on the folder.
  r = test::run_hyft("data render --data " + test::quote(dir + "/data.jsonl") + " --model " + test::quote(model) +
                     " --chat-template model");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto ref = test::run_python(test::quote(script + "hf_reference.py") + " hf-tokenize " + test::quote(model) +
                                    " " + test::quote(dir + "/data.jsonl"));
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);
  const auto theirs = nlohmann::json::parse(ref.out);
  std::istringstream lines(r.out);
  size_t n = 0;
  std::vector<std::string> trained;  // the text of the tokens that carry the loss, per chat record
  for (std::string line; std::getline(lines, line); ++n) {
    INFO("record " << n + 1);
    const auto rec = nlohmann::json::parse(line);
    REQUIRE(rec["input_ids"] == theirs["ids"][n]);
    if (rec["kind"] != "messages") continue;
    std::vector<int64_t> ids;
    for (const auto& l : rec["labels"])
      if (l.get<int64_t>() != -100) ids.push_back(l.get<int64_t>());
    trained.push_back(bpe.decode(ids));
  }
  REQUIRE(n == 7);
  // The assistant's text carries the loss, nothing else: " " + content + EOS per turn
  // (the generation prompt ends with "Assistant:").
  REQUIRE(trained == std::vector<std::string>{" 4<|end_of_text|>", " 7, or 11.<|end_of_text|> 😀 <|im_start|>ok<|end_of_text|>"});
  std::printf("tokenizer.json folder: %zu records, ids equal to %s's\n", n, theirs["class"].get<std::string>().c_str());

  // No Python from here on: fine-tune, then generate with the adapter.
  r = test::run_hyft("finetune --device cpu --model " + test::quote(model) + " --train " +
                     test::quote(dir + "/data.jsonl") + " --output " + test::quote(dir + "/run") +
                     " --max-steps 2 --micro-batch 2 --chat-template model");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // eval --labels: the prompt scored against each label's text, all through tokenizer.json.
  std::ofstream labelled(dir + "/labelled.jsonl");
  for (const char* l : {"yes", "no", "yes"})
    labelled << nlohmann::json({{"prompt", "Is 2 + 2 = 4? Answer:"}, {"completion", std::string(" ") + l}, {"label", l}})
                    .dump()
             << "\n";
  labelled.close();
  r = test::run_hyft("eval --device cpu --json --model " + test::quote(model) + " --adapter " +
                     test::quote(dir + "/run/adapter") + " --data " + test::quote(dir + "/labelled.jsonl") +
                     " --labels yes,no");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto report = nlohmann::json::parse(r.out);
  REQUIRE(report["label_metrics"]["examples"] == 3);
  r = test::run_hyft("generate --device cpu --model " + test::quote(model) + " --adapter " +
                     test::quote(dir + "/run/adapter") + " --prompt 'The quick' --max-new-tokens 4 --temperature 0");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
}
