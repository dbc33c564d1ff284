// Strict loading of model folders and clear refusals of bad input by `hyft eval`:
// every case exits with code 2 and a message that names the key, file or flag.
#include "support/catch.h"
#include "support/process.h"

#include "io/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using namespace hyft;
namespace fs = std::filesystem;

namespace {

const std::string kSource = std::string(HYFT_FIXTURES) + "/llama/mha";

// A copy of the fixture model whose weights pass through `edit`.
std::string edited_model(const std::string& name,
                         const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
  const std::string dir = test::temp_dir(name);
  fs::copy_file(kSource + "/model/config.json", dir + "/config.json");
  io::SafetensorsFile f(kSource + "/model/model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& k : f.keys()) tensors.emplace_back(k, f.tensor(k).clone());
  edit(tensors);
  io::save_safetensors(dir + "/model.safetensors", tensors);
  return dir;
}

std::string edited_config(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const std::string dir = test::temp_dir(name);
  fs::copy_file(kSource + "/model/model.safetensors", dir + "/model.safetensors");
  auto j = nlohmann::json::parse(test::read_text(kSource + "/model/config.json"));
  edit(j);
  std::ofstream(dir + "/config.json") << j.dump(2);
  return dir;
}

test::ProcessResult eval_on(const std::string& model_dir, const std::string& data = kSource + "/data.jsonl",
                            const std::string& extra = "") {
  return test::run_hyft("eval --device cpu --model " + test::quote(model_dir) + " --data " + test::quote(data) +
                        " " + extra);
}

void require_usage_error(const test::ProcessResult& r, const std::vector<std::string>& needles) {
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 2);
  for (const auto& n : needles) REQUIRE(r.err.find(n) != std::string::npos);
}

}  // namespace

TEST_CASE("a missing weight is refused by name", "[model]") {
  const auto dir = edited_model("missing_key", [](auto& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; }),
            t.end());
  });
  require_usage_error(eval_on(dir), {"model.layers.1.mlp.up_proj.weight", "missing"});
}

TEST_CASE("an unexpected weight is refused by name", "[model]") {
  const auto dir = edited_model("unexpected_key", [](auto& t) {
    t.emplace_back("model.layers.2.self_attn.q_proj.weight", at::zeros({32, 32}));
  });
  require_usage_error(eval_on(dir), {"model.layers.2.self_attn.q_proj.weight", "unexpected"});
}

TEST_CASE("a weight of the wrong shape is refused by name", "[model]") {
  const auto dir = edited_model("wrong_shape", [](auto& t) {
    for (auto& [k, v] : t)
      if (k == "model.layers.0.self_attn.k_proj.weight") v = at::zeros({16, 32});
  });
  require_usage_error(eval_on(dir), {"model.layers.0.self_attn.k_proj.weight", "shape", "[16, 32]"});
}

TEST_CASE("unsupported architectures and options are refused by name", "[model]") {
  require_usage_error(eval_on(edited_config("arch", [](auto& j) { j["architectures"] = {"GPT2LMHeadModel"}; })),
                      {"GPT2LMHeadModel", "config.json"});
  require_usage_error(eval_on(edited_config("yarn", [](auto& j) {
                        j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 2.0}, {"rope_theta", 1e4}};
                      })),
                      {"yarn", "not supported"});
  require_usage_error(eval_on(edited_config("heads", [](auto& j) { j["num_key_value_heads"] = 3; })),
                      {"num_key_value_heads"});
  require_usage_error(eval_on(edited_config("vocab", [](auto& j) { j.erase("vocab_size"); })), {"vocab_size"});
  const std::string empty = test::temp_dir("no_weights");
  fs::copy_file(kSource + "/model/config.json", empty + "/config.json");
  require_usage_error(eval_on(empty), {"model.safetensors"});
}

TEST_CASE("bad datasets and flags are usage errors", "[model]") {
  const std::string dir = test::temp_dir("bad_data");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string model = kSource + "/model";
  const auto broken = write("broken.jsonl", "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, 2\n");
  require_usage_error(eval_on(model, broken), {broken + ":2:", "not valid JSON"});
  require_usage_error(eval_on(model, write("vocab.jsonl", "{\"input_ids\": [1, 500]}\n")),
                      {"vocab.jsonl:1:", "'input_ids'[1] = 500"});
  require_usage_error(eval_on(model, write("labels.jsonl", "{\"input_ids\": [1, 5], \"labels\": [5]}\n")),
                      {"labels.jsonl:1:", "'labels' has 1"});
  require_usage_error(eval_on(model, write("type.jsonl", "{\"text\": 5}\n")), {"type.jsonl:1:", "'text' must be a string"});
  require_usage_error(eval_on(model, write("nofield.jsonl", "{\"foo\": 1}\n")), {"nofield.jsonl:1:", "no known record kind"});
  require_usage_error(eval_on(model, write("notok.jsonl", "{\"text\": \"hello\"}\n")),
                      {"notok.jsonl:1:", "needs a tokenizer", "--tokenizer"});
  require_usage_error(eval_on(model, write("empty.jsonl", "")), {"empty.jsonl", "empty"});
  require_usage_error(eval_on(model, write("utf8.jsonl", "{\"input_ids\": [1], \"x\": \"\xff\"}\n")),
                      {"utf8.jsonl:1:", "UTF-8"});
  // --skip-bad-lines goes on past the broken line.
  const auto skipped = eval_on(model, broken, "--skip-bad-lines --json");
  INFO(skipped.err);
  REQUIRE(skipped.exit_code == 0);
  REQUIRE(nlohmann::json::parse(skipped.out)["examples"] == 1);

  require_usage_error(eval_on(model, broken, "--precision fp8"), {"--precision", "fp8"});
  require_usage_error(eval_on(model, broken, "--no-such-flag"), {"no-such-flag", "--help"});
  require_usage_error(eval_on(model, broken, "--window-size -3"), {"window"});
  require_usage_error(eval_on(model, broken, "--global-ratio 1.5"), {"global ratio"});
  require_usage_error(test::run_hyft("eval --data x.jsonl"), {"--model"});
}
