// Enumerated-label metrics on a hand-checked case, `hyft eval --labels` on a tiny
// model end to end, and its predictions against transformers' scores.
#include "support/catch.h"
#include "support/process.h"

#include "eval/label_eval.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>

using namespace hyft;

TEST_CASE("label metrics on a hand-checked case", "[eval]") {
  // gold A A A B B C, predicted A A B B C C
  const auto m = eval::label_metrics({"A", "B", "C"}, {0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2});
  REQUIRE(m.confusion == std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}});
  REQUIRE(m.accuracy == Catch::Approx(4.0 / 6));
  // A: P 2/2, R 2/3, F1 0.8; B: P 1/2, R 1/2, F1 0.5; C: P 1/2, R 1/1, F1 2/3
  REQUIRE(m.per_class[0].precision == Catch::Approx(1.0));
  REQUIRE(m.per_class[0].recall == Catch::Approx(2.0 / 3));
  REQUIRE(m.per_class[0].f1 == Catch::Approx(0.8));
  REQUIRE(m.per_class[1].f1 == Catch::Approx(0.5));
  REQUIRE(m.per_class[2].precision == Catch::Approx(0.5));
  REQUIRE(m.per_class[2].recall == Catch::Approx(1.0));
  REQUIRE(m.per_class[2].f1 == Catch::Approx(2.0 / 3));
  REQUIRE(m.macro_f1 == Catch::Approx((0.8 + 0.5 + 2.0 / 3) / 3));
  REQUIRE(m.per_class[0].support == 3);
  // A class never predicted and never gold: precision, recall, F1 all 0.
  const auto none = eval::label_metrics({"A", "B"}, {0, 0}, {0, 0});
  REQUIRE(none.per_class[1].f1 == 0.0);
  REQUIRE(none.macro_f1 == Catch::Approx(0.5));
}

TEST_CASE("hyft eval --labels scores every allowed continuation", "[eval]") {
  const std::string dir = test::temp_dir("labels");
  const std::string tok = std::string(HYFT_FIXTURES) + "/tokenizer/test.model";
  {
    std::ofstream cfg(dir + "/config.json");
    cfg << R"({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 128})";
    std::ofstream data(dir + "/data.jsonl");
    for (int i = 0; i < 12; ++i)
      data << nlohmann::json({{"prompt", "case " + std::to_string(i) + " 是否高风险?"},
                              {"completion", i % 3 ? "低风险" : "高风险"}}).dump() << "\n";
    data << nlohmann::json({{"messages", {{{"role", "user"}, {"content", "risk?"}},
                                          {{"role", "assistant"}, {"content", "高风险"}}}}}).dump() << "\n";
  }
  auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                          test::quote(tok) + " --output " + test::quote(dir + "/model"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  r = test::run_hyft("eval --json --device cpu --model " + test::quote(dir + "/model") + " --data " +
                     test::quote(dir + "/data.jsonl") + " --labels 高风险,低风险");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto m = nlohmann::json::parse(r.out)["label_metrics"];
  REQUIRE(m["examples"] == 13);
  int64_t total = 0;
  for (const auto& row : m["confusion"])
    for (const auto& v : row) total += v.get<int64_t>();
  REQUIRE(total == 13);
  REQUIRE(m["per_class"]["高风险"]["support"] == 5);
  // `auto` takes the distinct gold labels; a gold outside --labels is a usage error.
  REQUIRE(test::run_hyft("eval --json --device cpu --model " + test::quote(dir + "/model") + " --data " +
                         test::quote(dir + "/data.jsonl") + " --labels auto").exit_code == 0);
  r = test::run_hyft("eval --device cpu --model " + test::quote(dir + "/model") + " --data " +
                     test::quote(dir + "/data.jsonl") + " --labels 高风险,中风险");
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("not one of --labels") != std::string::npos);
}

TEST_CASE("hyft eval --labels predicts what transformers scores most likely", "[eval]") {
  // A random model with large weights, so that the labels' likelihoods differ
  // from record to record; the reference scores each label's continuation with
  // transformers and picks the least NLL (test/python/hf_reference.py label-scores).
  const std::string dir = test::temp_dir("labels_reference");
  const std::string tok = std::string(HYFT_FIXTURES) + "/tokenizer/test.model";
  {
    std::ofstream cfg(dir + "/config.json");
    cfg << R"({"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 128, "initializer_range": 0.6})";
    std::ofstream data(dir + "/data.jsonl");
    const char* labels[] = {"高风险", "低风险", "中等"};
    for (int i = 0; i < 24; ++i)
      data << nlohmann::json({{"prompt", "case " + std::to_string(i * 7919 % 1000) + " 是否高风险?"},
                              {"completion", labels[i % 3]}}).dump() << "\n";
  }
  auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                          test::quote(tok) + " --output " + test::quote(dir + "/model"));
  REQUIRE(r.exit_code == 0);
  r = test::run_hyft("eval --json --device cpu --model " + test::quote(dir + "/model") + " --data " +
                     test::quote(dir + "/data.jsonl") + " --labels 高风险,低风险,中等");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto ours = nlohmann::json::parse(r.out)["label_metrics"];
  const auto ref = test::run_python(test::quote(std::string(HYFT_SOURCE_DIR) + "/test/python/hf_reference.py") +
                                    " label-scores " + test::quote(dir + "/model") + " " + test::quote(tok) + " " +
                                    test::quote(dir + "/data.jsonl") + " 高风险,低风险,中等");
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);
  const auto theirs = nlohmann::json::parse(ref.out);
  // The reference's choice must depend on the record and differ from the most
  // likely label's opposite, so that a constant or inverted prediction would fail.
  std::set<std::string> distinct;
  int argmax_agrees = 0;
  for (size_t i = 0; i < theirs["scores"].size(); ++i) {
    distinct.insert(theirs["predictions"][i].get<std::string>());
    const auto& row = theirs["scores"][i];
    const auto worst = std::max_element(row.begin(), row.end()) - row.begin();
    argmax_agrees += theirs["predictions"][i] == ours["labels"][size_t(worst)];
  }
  std::printf("labels: %zu distinct reference predictions over %zu records; accuracy hyft %.4f, transformers %.4f\n",
              distinct.size(), theirs["scores"].size(), ours["accuracy"].get<double>(),
              theirs["accuracy"].get<double>());
  REQUIRE(distinct.size() >= 2);
  REQUIRE(argmax_agrees == 0);
  REQUIRE(ours["predictions"] == theirs["predictions"]);
  REQUIRE(ours["confusion"] == theirs["confusion"]);
  REQUIRE(ours["accuracy"].get<double>() == Catch::Approx(theirs["accuracy"].get<double>()).margin(1e-12));
  REQUIRE(ours["macro_f1"].get<double>() == Catch::Approx(theirs["macro_f1"].get<double>()).margin(1e-12));
}
