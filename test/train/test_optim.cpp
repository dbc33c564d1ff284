// Optimizer pieces against PyTorch's and transformers' own: AdamW, the schedules,
// the fp16 loss scaler, and TensorBoard event files read back by TensorBoard.
#include "support/catch.h"
#include "support/process.h"

#include "io/safetensors.h"
#include "train/adamw.h"
#include "train/loss_scaler.h"
#include "train/lr_schedule.h"
#include "train/tensorboard.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <fstream>

using namespace hyft;

namespace {
const std::string kScript = std::string(HYFT_SOURCE_DIR) + "/test/python/torch_reference.py";
nlohmann::json python_json(const std::string& args) {
  const auto r = test::run_python(test::quote(kScript) + " " + args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}
}  // namespace

TEST_CASE("five AdamW steps equal torch.optim.AdamW", "[train]") {
  at::manual_seed(5);
  const std::vector<std::string> names = {"lora_A", "lora_B", "norm"};
  const std::vector<std::vector<int64_t>> shapes = {{4, 6}, {6, 4}, {6}};
  const std::vector<double> lrs = {1e-2, 2e-2, 1.5e-2, 1e-2, 5e-3};
  std::vector<std::pair<std::string, at::Tensor>> io;
  std::vector<train::NamedParameter> params;
  for (size_t i = 0; i < names.size(); ++i) {
    at::Tensor init = at::randn(shapes[i]);
    io.emplace_back(names[i] + ".init", init.clone());
    params.push_back({names[i], init.clone().requires_grad_(true), shapes[i].size() >= 2});
    for (int s = 0; s < 5; ++s) io.emplace_back(names[i] + ".grad" + std::to_string(s), at::randn(shapes[i]));
  }
  train::AdamWOptions o;
  o.lr = lrs[0];
  o.beta1 = 0.85;
  o.beta2 = 0.99;
  o.eps = 1e-6;
  o.weight_decay = 0.1;
  const nlohmann::json cfg = {{"names", names}, {"decay", {"lora_A", "lora_B"}}, {"lr", o.lr}, {"lrs", lrs},
                              {"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps},
                              {"weight_decay", o.weight_decay}, {"steps", 5}};
  const std::string text = cfg.dump();
  io.emplace_back("config", at::tensor(std::vector<uint8_t>(text.begin(), text.end())));
  const std::string dir = test::temp_dir("adamw");
  io::save_safetensors(dir + "/in.safetensors", io);

  train::AdamW opt(params, o);
  std::map<std::string, at::Tensor> grads;
  for (const auto& [k, v] : io) grads[k] = v;
  for (int s = 0; s < 5; ++s) {
    for (auto& p : params) p.param.mutable_grad() = grads[p.name + ".grad" + std::to_string(s)].clone();
    opt.step(lrs[size_t(s)]);
  }
  python_json("adamw " + test::quote(dir + "/in.safetensors") + " " + test::quote(dir + "/out.safetensors") +
              "");
  io::SafetensorsFile ref(dir + "/out.safetensors");
  for (const auto& p : params) {
    const double diff = (p.param.detach() - ref.tensor(p.name)).abs().max().item<double>();
    std::printf("adamw %-7s max |diff| vs torch.optim.AdamW after 5 steps: %.3g\n", p.name.c_str(), diff);
    REQUIRE(diff < 1e-6);
    REQUIRE((p.param.detach() - grads[p.name + ".init"]).abs().max().item<double>() > 1e-3);  // it moved
  }
}

TEST_CASE("learning-rate schedules equal transformers' at every step", "[train]") {
  const auto ref = python_json("schedules 4 20 0.003");
  for (const auto& [name, kind] : {std::pair<std::string, train::Schedule>{"constant", train::Schedule::Constant},
                                   {"linear", train::Schedule::Linear},
                                   {"cosine", train::Schedule::Cosine}}) {
    for (int64_t step = 0; step < 20; ++step) {
      INFO(name << " step " << step);
      REQUIRE(std::abs(train::learning_rate(kind, 0.003, step, 4, 20) - ref[name][size_t(step)].get<double>()) <
              1e-12);
    }
  }
  REQUIRE(train::learning_rate(train::Schedule::Cosine, 1.0, 5, 0, 10) == Catch::Approx(0.5));
  REQUIRE(train::learning_rate(train::Schedule::Linear, 1.0, 2, 4, 10) == Catch::Approx(0.5));
}

TEST_CASE("fp16 loss scaler: an inf is skipped, the scale backs off, then grows like GradScaler", "[train]") {
  const std::string dir = test::temp_dir("scaler");
  const nlohmann::json spec = {{"init_scale", 1024}, {"interval", 3}, {"steps", 12}, {"inf_steps", {2, 3, 9}}};
  std::ofstream(dir + "/spec.json") << spec.dump();
  const auto ref = python_json("scaler " + test::quote(dir + "/spec.json"));
  train::LossScaler scaler({1024, 2.0, 0.5, 3}, at::kCPU);
  for (int step = 0; step < 12; ++step) {
    at::Tensor g = at::ones({3}) * scaler.scale();  // the scaled gradient of a unit gradient
    const bool inf = step == 2 || step == 3 || step == 9;
    if (inf) g[1] = std::numeric_limits<float>::infinity();
    const bool ok = scaler.unscale_and_check({g});
    REQUIRE(ok == !inf);
    if (ok) REQUIRE(at::allclose(g, at::ones({3})));  // unscaled in place
    scaler.update();
    INFO("step " << step);
    REQUIRE(scaler.scale() == ref["scales"][size_t(step)].get<double>());
  }
  REQUIRE(scaler.skipped_steps() == 3);
}

TEST_CASE("TensorBoard event files read back with valid CRCs", "[train]") {
  const std::string dir = test::temp_dir("events");
  std::string path;
  {
    train::EventWriter w(dir);
    for (int s = 1; s <= 5; ++s) {
      w.scalar("train/loss", 3.0 / s, s);
      w.scalar("eval/perplexity", 10.0 + s, s);
    }
    path = w.path();
  }
  const auto ref = python_json("tensorboard " + test::quote(path));
  REQUIRE(ref["records"] == 11);
  REQUIRE(ref["file_version"] == "brain.Event:2");
  REQUIRE(ref["scalars"]["train/loss"].size() == 5);
  REQUIRE(ref["scalars"]["train/loss"][2][0] == 3);
  REQUIRE(ref["scalars"]["train/loss"][2][1].get<double>() == Catch::Approx(1.0));
  REQUIRE(ref["scalars"]["eval/perplexity"][4][1].get<double>() == Catch::Approx(15.0));
  REQUIRE(train::crc32c("123456789", 9) == 0xe3069283u);  // the CRC-32C check value
}
