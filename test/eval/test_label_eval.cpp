// Enumerated-label metrics on a hand-checked case, and `hyft eval --labels` on a
// tiny model end to end.
#include "support/catch.h"
#include "support/process.h"

#include "eval/label_eval.h"

#include <nlohmann/json.hpp>

#include <fstream>

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
