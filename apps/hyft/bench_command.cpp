// hyft bench (SPEC 8): LoRA (or full) training throughput on random tokens for a
// named model shape, printing the fields of the reference peer
// (shared/peers/hf_peft_bench.py) so both can be compared in one run.
#include "commands.h"

#include "adapters/lora_linear.h"
#include "common/error.h"
#include "common/gpu_memory.h"
#include "common/runtime.h"
#include "model/causal_lm_loss.h"
#include "train/activation_checkpoint.h"
#include "train/adamw.h"
#include "train/autocast.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <map>

namespace hyft::app {

namespace {

// The peer's shapes (public checkpoints' config.json values).
model::LlamaConfig shape_config(const std::string& name, int64_t seq) {
  model::LlamaConfig c;
  struct Shape { int64_t D, F, L, H, Hkv, V; double theta; };
  static const std::map<std::string, Shape> shapes = {
      {"tiny", {256, 688, 4, 8, 8, 32000, 10000.0}},
      {"1.3b", {2048, 5504, 24, 16, 16, 32256, 100000.0}},   // deepseek-coder-1.3b-base
      {"7b", {4096, 11008, 30, 32, 32, 102400, 10000.0}},    // deepseek-llm-7b-base
      {"8b", {4096, 14336, 32, 32, 8, 128256, 500000.0}},    // Llama-3-8B
  };
  const auto it = shapes.find(name);
  HYFT_CHECK(it != shapes.end(), "--shape: '", name, "' is not a shape; use tiny, 1.3b, 7b or 8b");
  const Shape& s = it->second;
  c.hidden_size = s.D;
  c.intermediate_size = s.F;
  c.num_hidden_layers = s.L;
  c.num_attention_heads = s.H;
  c.num_key_value_heads = s.Hkv;
  c.head_dim = s.D / s.H;
  c.vocab_size = s.V;
  c.rope_theta = s.theta;
  c.max_position_embeddings = std::max<int64_t>(4096, seq);
  return c;
}

}  // namespace

int bench_command(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Time LoRA (or full) training steps on random tokens for a named model shape; "
                                 "prints one JSON line with the reference peer's fields.");
  opts.add_options()
      ("shape", "tiny, 1.3b, 7b or 8b", cxxopts::value<std::string>()->default_value("1.3b"))
      ("seq", "sequence length", cxxopts::value<int64_t>()->default_value("2048"))
      ("batch", "sequences per step", cxxopts::value<int64_t>()->default_value("8"))
      ("steps", "timed steps", cxxopts::value<int64_t>()->default_value("10"))
      ("warmup", "untimed steps first", cxxopts::value<int64_t>()->default_value("3"))
      ("grad-ckpt", "gradient checkpointing (0 or 1)", cxxopts::value<int>()->default_value("1"))
      ("rank", "LoRA rank", cxxopts::value<int64_t>()->default_value("16"))
      ("alpha", "LoRA alpha", cxxopts::value<double>()->default_value("32"))
      ("targets", "LoRA targets", cxxopts::value<std::string>()->default_value("q_proj,v_proj"))
      ("mode", "lora or full", cxxopts::value<std::string>()->default_value("lora"))
      ("window-size", "hybrid attention window (0 = full causal)", cxxopts::value<int64_t>()->default_value("0"))
      ("global-ratio", "hybrid attention global ratio", cxxopts::value<double>()->default_value("0"))
      ("device", "cuda or cuda:N (cpu works, slowly)", cxxopts::value<std::string>()->default_value("auto"))
      ("profile", "also time forward, backward and optimizer separately (synchronising between them)")
      ("peak-tflops", "bf16 dense matmul rate of this GPU, for MFU", cxxopts::value<double>()->default_value("790"));
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  const std::string shape = args["shape"].as<std::string>(), mode = args["mode"].as<std::string>();
  HYFT_CHECK(mode == "lora" || mode == "full", "--mode: use lora or full");
  const int64_t T = args["seq"].as<int64_t>(), B = args["batch"].as<int64_t>();
  const int64_t steps = args["steps"].as<int64_t>(), warmup = args["warmup"].as<int64_t>();
  const bool ckpt = args["grad-ckpt"].as<int>() != 0;
  const at::Device device = parse_device(args["device"].as<std::string>());
  const at::ScalarType compute = device.is_cuda() ? at::kBFloat16 : at::kFloat;

  const model::LlamaConfig cfg = shape_config(shape, T);
  at::manual_seed(0);
  model::LlamaForCausalLM model(cfg, at::TensorOptions().dtype(mode == "full" ? at::kFloat : compute).device(device));
  model::init_random_weights(*model);
  model->attention_settings = {args["window-size"].as<int64_t>(), args["global-ratio"].as<double>()};
  attention::validate(model->attention_settings, "--window-size/--global-ratio");
  int64_t n_base = 0;
  for (const auto& p : model->named_parameters())
    if (p.key().find("embed_tokens") == std::string::npos) n_base += p.value().numel();
  adapters::LoraSettings lora;
  lora.targets = adapters::parse_targets(args["targets"].as<std::string>(), "--targets");
  lora.r = args["rank"].as<int64_t>();
  lora.alpha = args["alpha"].as<double>();
  if (mode == "lora") adapters::apply_lora(*model, lora);
  else adapters::unfreeze_all(*model);
  if (ckpt) model->model->layer_runner = train::checkpointed_layer;
  model->train();
  std::vector<train::NamedParameter> trainable;
  for (const auto& p : model->named_parameters())
    if (p.value().requires_grad()) trainable.push_back({p.key(), p.value(), true});
  train::AdamW opt(trainable, {2e-4, 0.9, 0.999, 1e-8, 0.0});
  const auto layout = model::sequential_layout(B, T, device);

  // Phase timings (--profile): forward, backward, optimizer, with a sync after each.
  const bool profile = args.count("profile") > 0;
  double phase_ms[3] = {0, 0, 0};
  auto now = [&]() {
    if (device.is_cuda()) torch::cuda::synchronize();
    return std::chrono::steady_clock::now();
  };
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  auto step = [&]() {
    const at::Tensor ids = at::randint(0, cfg.vocab_size, {B, T}, at::TensorOptions().dtype(at::kLong).device(device));
    at::Tensor loss;
    const auto t_start = profile ? now() : std::chrono::steady_clock::now();
    {
      train::AutocastGuard autocast(device.type(), compute);
      const auto nll = model::target_nll(*model, model->hidden_states(ids, layout), ids);
      loss = nll.sum / double(nll.count);
    }
    const auto t_fwd = profile ? now() : t_start;
    loss.backward();
    const auto t_bwd = profile ? now() : t_start;
    opt.step(2e-4);
    opt.zero_grad();
    if (profile) {
      const auto t_opt = now();
      phase_ms[0] += ms(t_start, t_fwd);
      phase_ms[1] += ms(t_fwd, t_bwd);
      phase_ms[2] += ms(t_bwd, t_opt);
    }
    return loss;
  };
  for (int64_t i = 0; i < warmup; ++i) step();
  for (double& p : phase_ms) p = 0;
  if (device.is_cuda()) torch::cuda::synchronize();
  reset_peak_memory(device);
  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor loss;
  for (int64_t i = 0; i < steps; ++i) loss = step();
  if (device.is_cuda()) torch::cuda::synchronize();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tps = double(steps * B * T) / dt;
  // Model FLOPs per token as the peer counts them: forward 2N, input gradients 2N,
  // causal attention 2 L T D forward and twice that backward; weight gradients
  // (2N) only when every weight trains. Recompute is not counted.
  double flops = 4.0 * double(n_base) + 3.0 * 2.0 * double(cfg.num_hidden_layers * T * cfg.hidden_size);
  if (mode == "full") flops += 2.0 * double(n_base);
  const double mfu = tps * flops / (args["peak-tflops"].as<double>() * 1e12);
  nlohmann::ordered_json j = {
      {"system", mode == "lora" ? "hyft" : "hyft-full"}, {"shape", shape}, {"mode", mode},
      {"precision", device.is_cuda() ? "bf16" : "fp32"}, {"seq", T}, {"batch", B}, {"grad_ckpt", int(ckpt)},
      {"rank", lora.r}, {"targets", args["targets"].as<std::string>()},
      {"window_size", model->attention_settings.window_size}, {"global_ratio", model->attention_settings.global_ratio},
      {"tokens_per_s", std::llround(tps)}, {"step_ms", std::round(10000.0 * dt / double(steps)) / 10.0},
      {"peak_mem_gib", std::round(100.0 * peak_memory_gib(device)) / 100.0}, {"mfu", std::round(1e4 * mfu) / 1e4},
      {"loss", std::round(1e4 * loss.item<double>()) / 1e4}, {"torch", TORCH_VERSION}};
  if (profile) {
    j["forward_ms"] = std::round(10.0 * phase_ms[0] / double(steps)) / 10.0;
    j["backward_ms"] = std::round(10.0 * phase_ms[1] / double(steps)) / 10.0;
    j["optimizer_ms"] = std::round(10.0 * phase_ms[2] / double(steps)) / 10.0;
  }
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace hyft::app
