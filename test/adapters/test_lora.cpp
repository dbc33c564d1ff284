// LoRA modules and merging: a fresh adapter changes nothing, merged equals
// unmerged, unmerge restores, and the trainable count is PEFT's.
#include "support/catch.h"

#include "adapters/lora_linear.h"
#include "adapters/merge.h"
#include "common/error.h"
#include "model/load.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "support/process.h"

using namespace hyft;

namespace {

std::string llama(const std::string& name) { return std::string(HYFT_FIXTURES) + "/llama/" + name; }

adapters::LoraSettings all_targets(int64_t r, double alpha, bool rslora) {
  adapters::LoraSettings s;
  s.targets = adapters::lora_target_names();
  s.r = r;
  s.alpha = alpha;
  s.use_rslora = rslora;
  return s;
}

void randomize(adapters::LoraModules& modules, uint64_t seed) {
  at::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& [name, m] : modules) {
    m->lora_A->weight.normal_(0.0, 0.05);
    m->lora_B->weight.normal_(0.0, 0.05);
  }
}

}  // namespace

TEST_CASE("a fresh adapter leaves the outputs bit-identical", "[adapters]") {
  auto model = model::load_pretrained(llama("mha") + "/model", {});
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(0, 96, {2, 17}, at::kLong);
  const at::Tensor before = model->forward(ids);
  const auto modules = adapters::apply_lora(*model, all_targets(8, 16, false));
  REQUIRE(modules.size() == 2 * 7);
  model->train();  // dropout on the adapter input changes nothing while B is zero
  REQUIRE(at::equal(model->forward(ids), before));
  model->eval();
  REQUIRE(at::equal(model->forward(ids), before));
  // A is Kaiming-uniform(a = sqrt(5)): within +-1/sqrt(in); B is zero.
  for (const auto& [name, m] : modules) {
    const double bound = 1.0 / std::sqrt(double(m->lora_A->weight.size(1)));
    REQUIRE(m->lora_A->weight.abs().max().item<double>() <= bound);
    REQUIRE(m->lora_A->weight.abs().max().item<double>() > 0.5 * bound);
    REQUIRE(m->lora_B->weight.abs().max().item<double>() == 0.0);
  }
}

TEST_CASE("merged equals unmerged, and unmerge restores the weights", "[adapters]") {
  for (bool rslora : {false, true}) {
    auto model = model::load_pretrained(llama("llama3_bias_headdim") + "/model", {});
    auto reference = model::load_pretrained(llama("llama3_bias_headdim") + "/model", {});
    auto modules = adapters::apply_lora(*model, all_targets(6, 12, rslora));
    randomize(modules, rslora ? 2 : 1);
    model->eval();
    at::NoGradGuard no_grad;
    const at::Tensor ids = at::randint(0, 96, {2, 19}, at::kLong);
    const at::Tensor unmerged = model->forward(ids);  // fixed seeds: the same numbers every run
    REQUIRE(modules.begin()->second->scaling == (rslora ? 12 / std::sqrt(6.0) : 2.0));
    // Merge into the plain model's weights: W + scaling * B A.
    for (auto& item : reference->named_parameters()) {
      const std::string& key = item.key();
      const auto it = modules.find(key.substr(0, key.size() - 7));  // strip ".weight"
      if (key.size() < 7 || key.compare(key.size() - 7, 7, ".weight") != 0 || it == modules.end()) continue;
      const auto& m = it->second;
      item.value().copy_(adapters::merge_lora(item.value(), m->lora_A->weight, m->lora_B->weight, m->scaling, at::kFloat));
    }
    const double diff = (reference->forward(ids) - unmerged).abs().max().item<double>();
    std::printf("lora merged vs unmerged (rslora %d): max |diff| %.3g (logit scale %.3g)\n", int(rslora), diff,
                unmerged.abs().max().item<double>());
    REQUIRE(diff < 1e-5);
    // The adapter must matter for the comparison to mean anything.
    REQUIRE((unmerged - model::load_pretrained(llama("llama3_bias_headdim") + "/model", {})->forward(ids))
                .abs().max().item<double>() > 1e-2);
    // Unmerge restores the original weights.
    for (const auto& [name, m] : modules) {
      const at::Tensor& W = m->base_layer->weight;
      const at::Tensor merged = adapters::merge_lora(W, m->lora_A->weight, m->lora_B->weight, m->scaling, at::kFloat);
      const at::Tensor back = adapters::unmerge_lora(merged, m->lora_A->weight, m->lora_B->weight, m->scaling, at::kFloat);
      REQUIRE((back - W).abs().max().item<double>() < 1e-6);
      REQUIRE((merged - W).abs().max().item<double>() > 1e-3);
    }
  }
}

TEST_CASE("merge computes in fp32 and casts once", "[adapters]") {
  at::manual_seed(1);
  const at::Tensor W = at::randn({8, 6}).to(at::kBFloat16);
  const at::Tensor A = at::randn({2, 6}) * 1e-3, B = at::randn({8, 2}) * 1e-3;
  const at::Tensor merged = adapters::merge_lora(W, A, B, 2.0, at::kBFloat16);
  REQUIRE(merged.scalar_type() == at::kBFloat16);
  const at::Tensor expect = (W.to(at::kFloat) + 2.0 * at::matmul(B, A)).to(at::kBFloat16);
  REQUIRE(at::equal(merged, expect));
}

TEST_CASE("the trainable parameter count equals PEFT's", "[adapters]") {
  // name, base, targets, r: as test/python/hf_reference.py PEFT_FIXTURES made them
  const std::vector<std::tuple<std::string, std::string, std::vector<std::string>, int64_t>> cases = {
      {"mha_all", "mha", adapters::lora_target_names(), 8},
      {"tied_qv_rslora", "gqa_tied_linear", {"q_proj", "v_proj"}, 4},
      {"bias_kod", "llama3_bias_headdim", {"k_proj", "o_proj", "down_proj"}, 6},
  };
  for (const auto& [name, base, targets, r] : cases) {
    const auto ref = nlohmann::json::parse(test::read_text(std::string(HYFT_FIXTURES) + "/peft/" + name + "/reference.json"));
    auto model = model::load_pretrained(llama(base) + "/model", {});
    adapters::LoraSettings s;
    s.targets = targets;
    s.r = r;
    adapters::apply_lora(*model, s);
    const auto count = adapters::count_parameters(*model);
    const std::string line = adapters::format_parameter_count(count);
    INFO(name << ": " << line);
    REQUIRE(count.trainable == ref["trainable"].get<int64_t>());
    REQUIRE(count.total == ref["total"].get<int64_t>());
    // Only A and B train.
    for (const auto& item : model->named_parameters())
      REQUIRE(item.value().requires_grad() == (item.key().find(".lora_") != std::string::npos));
  }
  REQUIRE(adapters::format_parameter_count({1024, 27808}) ==
          "trainable params: 1,024 || all params: 27,808 || trainable%: 3.6824");
}

TEST_CASE("LoRA settings are validated", "[adapters]") {
  REQUIRE(adapters::parse_targets("q_proj, v_proj", "--targets") == std::vector<std::string>{"q_proj", "v_proj"});
  REQUIRE(adapters::parse_targets("all", "--targets").size() == 7);
  std::string message;
  try {
    adapters::parse_targets("q_proj,embed_tokens", "--targets");
  } catch (const UserError& e) {
    message = e.what();
  }
  REQUIRE(message.find("'embed_tokens' is not a projection") != std::string::npos);
  // lm_head is a target of its own (PEFT's name), outside `all`.
  REQUIRE(adapters::parse_targets("q_proj,lm_head", "--targets") == std::vector<std::string>{"q_proj", "lm_head"});
  adapters::LoraSettings s;
  s.r = 0;
  REQUIRE_THROWS(adapters::validate(s, "--lora-r"));
}
