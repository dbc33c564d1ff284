#include "recipes/bench.h"

#include "attention/backend.h"

#include "adapters/lora_linear.h"
#include "adapters/quantize_base.h"
#include "common/error.h"
#include "common/gpu_memory.h"
#include "common/runtime.h"
#include "common/strings.h"
#include "generate/engine.h"
#include "recipes/processes.h"
#include "train/trainer.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <cmath>
#include <map>
#include <set>

namespace hyft::recipes {

namespace {

model::LlamaConfig shape_config(const std::string& name, int64_t seq) {
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
  model::LlamaConfig c;
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

// `v` rounded to `digits` decimals (printed without binary noise: 119.6, not 119.60000000000001).
double rounded(double v, int digits) {
  const double scale = std::pow(10.0, digits);
  return std::round(v * scale) / scale;
}

// The GPU kernels that `run` launches, by name: total nanoseconds and launches,
// through PyTorch's profiler (kernels inside CUDA graphs included).
struct KernelTimes {
  std::map<std::string, std::pair<double, int64_t>> by_name;
  double total_ns = 0;
};

KernelTimes profile_kernels(const std::function<void()>& run) {
  namespace prof = torch::profiler::impl;
  const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
  const std::set<prof::ActivityType> activities = {prof::ActivityType::CPU, prof::ActivityType::CUDA};
  torch::autograd::profiler::prepareProfiler(config, activities);
  torch::autograd::profiler::enableProfiler(config, activities);
  run();
  const auto result = torch::autograd::profiler::disableProfiler();
  KernelTimes t;
  for (const auto& e : result->events()) {
    if (e.deviceType() != c10::DeviceType::CUDA || e.durationNs() == 0) continue;
    auto& [ns, count] = t.by_name[e.name()];
    ns += double(e.durationNs());
    ++count;
    t.total_ns += double(e.durationNs());
  }
  return t;
}

// The categories a training step's GPU time falls into, by kernel name.
const char* kernel_category(const std::string& name) {
  auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  if (has("flash") || has("fmha") || has("attention") || has("cudnn")) return "attention";
  if (has("gemm") || has("nvjet") || has("cutlass") || has("xmma") || has("splitK")) return "gemm";
  if (has("hyft::kernels")) return "hyft_kernels";
  return "other";
}

}  // namespace

nlohmann::ordered_json run_bench(const BenchOptions& o) {
  HYFT_CHECK(o.seq >= 2 && o.micro_batch > 0 && o.steps > 0 && o.warmup >= 0,
             "--seq must be >= 2, --micro-batch and --steps positive, --warmup >= 0");
  attention::validate(o.attention, "--window-size/--global-ratio");
  // Under torchrun: data parallel, each rank its own rows; tokens/s counts every
  // rank's tokens, memory is rank 0's (as the peer reports them).
  std::string device_name = o.device;
  const auto comm = join_processes(device_name, 600);
  const int64_t world = comm ? comm->world() : 1;
  const at::Device device = parse_device(device_name);
  const at::ScalarType compute = device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (!device.is_cuda() && o.shape != "tiny")
    std::fprintf(stderr, "warning: bench on the CPU with shape %s takes minutes per step; --shape tiny checks the "
                         "setup quickly, a GPU (--device cuda) measures throughput\n", o.shape.c_str());
  const int64_t B = o.micro_batch, T = o.seq;

  const model::LlamaConfig cfg = shape_config(o.shape, T);
  at::manual_seed(0);
  model::LlamaForCausalLM model(cfg, at::TensorOptions().dtype(o.full ? at::kFloat : compute).device(device));
  model::init_random_weights(*model);
  model->attention_settings = o.attention;
  model->attention_backend = &attention::default_backend(device);
  int64_t n_base = 0;
  for (const auto& p : model->named_parameters())
    if (p.key().find("embed_tokens") == std::string::npos) n_base += p.value().numel();
  const auto quantize = quant::parse_format(o.quantize, "--quantize");
  HYFT_CHECK(!(o.full && quantize != quant::Format::None), "--full trains every weight; --quantize needs an adapter");
  if (o.full) adapters::unfreeze_all(*model);
  else adapters::apply_lora(*model, o.lora);
  adapters::quantize_base(*model, quantize);
  std::vector<train::NamedParameter> trainable;
  for (const auto& p : model->named_parameters())
    if (p.value().requires_grad()) trainable.push_back({p.key(), p.value(), train::default_decay(p.value())});

  // Random token rows, every position a target, one row per draw of the sampler; or
  // records of random lengths that the trainer packs into rows (packing) or batches
  // as they come (variable_length).
  data::Dataset rows;
  rows.max_seq_len = T;
  const bool variable = o.packing || o.variable_length;
  if (variable) {
    HYFT_CHECK(o.min_len >= 2 && o.max_len >= o.min_len && o.max_len <= T,
               "--min-len and --max-len must satisfy 2 <= min <= max <= --seq");
    const int64_t need = 2 * B * T * (o.warmup + o.steps) * world;  // tokens: twice what the steps draw
    const at::Tensor lens = at::randint(o.min_len, o.max_len + 1, {need / o.min_len + 1}, at::kLong);
    const at::Tensor ids = at::randint(0, cfg.vocab_size, {need + o.max_len}, at::kLong);
    int64_t at = 0;
    for (int64_t r = 0; at < need; ++r) {
      const int64_t n = lens[r].item<int64_t>();
      data::Example ex;
      ex.input_ids.assign(ids.data_ptr<int64_t>() + at, ids.data_ptr<int64_t>() + at + n);
      ex.labels = ex.input_ids;
      rows.examples.push_back(std::move(ex));
      at += n;
    }
  } else {
    const at::Tensor ids =
        at::randint(0, cfg.vocab_size, {B * (o.warmup + o.steps) * world, T}, at::kLong).contiguous();
    for (int64_t r = 0; r < ids.size(0); ++r) {
      data::Example ex;
      ex.input_ids.assign(ids[r].data_ptr<int64_t>(), ids[r].data_ptr<int64_t>() + T);
      ex.labels = ex.input_ids;
      rows.examples.push_back(std::move(ex));
    }
  }
  train::TrainerOptions t;
  t.precision = compute;
  t.device = device;
  t.checkpointing = o.checkpointing;
  t.micro_batch = B;
  t.schedule = train::Schedule::Constant;
  t.max_grad_norm = 0.0;  // no clipping, as the peer
  t.packing = o.packing;
  t.padding_free = o.padding_free;
  if (comm) {
    t.sampling.rank = comm->rank();
    t.sampling.world = comm->world();
  }
  const std::vector<data::Example> no_eval;
  train::Trainer trainer(*model, std::move(trainable), rows, no_eval, t, {}, comm.get());

  train::PhaseTimes phases;
  for (int64_t i = 0; i < o.warmup; ++i) trainer.train_step(i);
  synchronize(device);
  reset_peak_memory(device);
  const auto t0 = std::chrono::steady_clock::now();
  train::StepStats last;
  int64_t tokens = 0;  // real tokens (packed rows carry some padding)
  std::vector<double> step_ms;
  for (int64_t i = 0; i < o.steps; ++i) {
    const auto s0 = std::chrono::steady_clock::now();
    last = trainer.train_step(o.warmup + i, o.profile ? &phases : nullptr);
    tokens += variable ? last.tokens : B * T * world;  // a step's tokens are every rank's
    if (variable) {  // per-step times need a sync; only variable-length records report them
      synchronize(device);
      step_ms.push_back(1000.0 * std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
    }
  }
  synchronize(device);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tps = double(tokens) / dt;
  // Model FLOPs per token as the peer counts them: forward 2N, input gradients 2N,
  // causal attention 2 L T D forward and twice that backward; weight gradients
  // (2N) only when every weight trains. Recompute is not counted.
  double flops = 4.0 * double(n_base) + 3.0 * 2.0 * double(cfg.num_hidden_layers * T * cfg.hidden_size);
  if (o.full) flops += 2.0 * double(n_base);
  const double mfu = tps * flops / (o.peak_tflops * 1e12 * double(world));  // per GPU
  const std::string targets = join_list(o.lora.targets);
  nlohmann::ordered_json j = {
      {"gpus", world},
      {"system", std::string(o.full ? "hyft-full" : "hyft") +
                     (quantize != quant::Format::None ? std::string("-") + quant::format_name(quantize) : "")}, {"shape", o.shape}, {"mode", o.full ? "full" : "lora"},
      {"precision", device.is_cuda() ? "bf16" : "fp32"}, {"seq", T}, {"batch", B},
      {"grad_ckpt", int(o.checkpointing != train::Checkpointing::Off)},
      {"checkpointing", train::checkpointing_name(o.checkpointing)}, {"rank", o.lora.r}, {"targets", targets},
      {"window_size", o.attention.window_size}, {"global_ratio", o.attention.global_ratio},
      {"tokens_per_s", std::llround(tps)}, {"step_ms", rounded(1000.0 * dt / double(o.steps), 1)},
      {"peak_mem_gib", rounded(peak_memory_gib(device), 2)}, {"mfu", rounded(mfu, 4)},
      {"loss", rounded(last.loss, 4)}, {"torch", TORCH_VERSION}};
  if (variable) {
    std::sort(step_ms.begin(), step_ms.end());
    j["packing"] = o.packing;
    if (!o.packing) j["padding_free"] = data::padding_free_name(o.padding_free);
    j["record_lengths"] = std::to_string(o.min_len) + "-" + std::to_string(o.max_len);
    j["step_ms_median"] = rounded(step_ms[step_ms.size() / 2], 1);
    j["step_ms_max"] = rounded(step_ms.back(), 1);
    j["row_fill"] = rounded(double(tokens) / double(B * T * o.steps * world), 3);  // real tokens / row slots
  }
  if (o.profile) {
    j["forward_ms"] = rounded(phases.forward_ms / double(o.steps), 1);
    j["backward_ms"] = rounded(phases.backward_ms / double(o.steps), 1);
    j["optimizer_ms"] = rounded(phases.optimizer_ms / double(o.steps), 1);
  }
  if (o.profile && device.is_cuda()) {  // two more steps through PyTorch's profiler: GPU time by kind and kernel
    const int64_t steps = 2;
    const KernelTimes k = profile_kernels([&] {
      for (int64_t i = 0; i < steps; ++i) trainer.train_step(o.warmup + o.steps + i);
      synchronize(device);
    });
    std::map<std::string, double> by_kind;
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [name, v] : k.by_name) {
      by_kind[kernel_category(name)] += v.first;
      rows.push_back({v.first, name});
    }
    std::sort(rows.rbegin(), rows.rend());
    nlohmann::ordered_json kinds, top = nlohmann::ordered_json::array();
    kinds["total"] = rounded(k.total_ns / 1e6 / double(steps), 1);
    for (const auto& [kind, ns] : by_kind) kinds[kind] = rounded(ns / 1e6 / double(steps), 1);
    for (size_t i = 0; i < std::min<size_t>(rows.size(), 8); ++i)
      top.push_back({{"kernel", rows[i].second.substr(0, 70)}, {"ms", rounded(rows[i].first / 1e6 / double(steps), 1)},
                     {"launches", k.by_name.at(rows[i].second).second / steps}});
    j["gpu_ms_by_kind"] = kinds;
    j["top_kernels"] = top;
  }
  return j;
}

std::vector<nlohmann::ordered_json> run_decode_bench(const DecodeBenchOptions& o) {
  HYFT_CHECK(o.prompt_len >= 1 && o.new_tokens >= 1 && !o.streams.empty(), "--prompt-len and --new-tokens must be positive");
  const at::Device device = parse_device(o.device);
  const at::ScalarType dtype = device.is_cuda() ? at::kBFloat16 : at::kFloat;
  const model::LlamaConfig cfg = shape_config(o.shape, o.prompt_len + o.new_tokens);
  at::manual_seed(0);
  model::LlamaForCausalLM model(cfg, at::TensorOptions().dtype(dtype).device(device));
  model::init_random_weights(*model);
  model->attention_backend = &attention::default_backend(device);
  const auto quantize = quant::parse_format(o.quantize, "--quantize");
  adapters::quantize_base(*model, quantize);
  generate::prepare_for_decoding(*model);  // as the engine does, for the check's steps too
  // Read once a decoding step: every weight but the embedding table (quantized
  // projections hold their codes and scales instead of a dense weight).
  double weight_bytes = 0;
  for (const auto& p : model->named_parameters())
    if (p.key().find("embed_tokens") == std::string::npos || cfg.tie_word_embeddings)
      weight_bytes += double(p.value().numel()) * double(p.value().element_size());
  for (const auto& m : model->modules(/*include_self=*/false))
    if (const auto* p = dynamic_cast<const model::Projection*>(m.get()); p && p->quantized)
      weight_bytes += double(p->quantized->bytes());
  const std::string system = quantize == quant::Format::None ? "hyft" : std::string("hyft-") + quant::format_name(quantize);
  std::vector<nlohmann::ordered_json> out;
  if (o.check) {  // four sequences of different lengths in a 4-slot cache; one step both ways
    // The lengths make the graph's buckets (rows 4 and 1; keys 256 and 128) the eager
    // step's exact sizes, so both run the same kernels and should agree bit for bit.
    at::NoGradGuard no_grad;
    model->eval();
    model::SlotCache cache = model->make_slot_cache(4, 512);
    std::vector<int64_t> ids, positions;
    for (const int64_t len : {127, 60, 200, 255}) {
      model::KVCache kv;
      model->forward_cached(at::randint(0, cfg.vocab_size, {1, len}, at::kLong).to(device), kv);
      model->store_in_slot(kv, cache, int64_t(ids.size()));
      ids.push_back(11 + len);
      positions.push_back(len);
    }
    generate::DecodeGraphs graphs(*model, cache);
    for (const size_t n : {size_t(4), size_t(1)}) {  // 4 rows, then one (the single-stream kernels)
      const std::vector<int64_t> step_ids(ids.begin(), ids.begin() + long(n));
      const std::vector<int64_t> step_positions(positions.begin(), positions.begin() + long(n));
      const at::Tensor a = graphs.step(step_ids, step_positions).to(at::kCPU, at::kFloat);  // (n, V)
      // eager: keys = the largest position + 1, as the graph's bucket here
      const at::Tensor b = model->forward_slots(at::tensor(step_ids, at::kLong).view({long(n), 1}).to(device),
                                                at::tensor(step_positions, at::kLong).to(device), cache)
                               .to(at::kCPU, at::kFloat);
      const double rel = ((a - b).norm() / b.norm()).item<double>();
      // logits_sum: a fingerprint to compare runs (HYFT_DEPENDENT_LAUNCH=0 against the default, say)
      out.push_back({{"check", "decoding step: CUDA graph vs eager"}, {"rows", n}, {"graphs", graphs.enabled()},
                     {"rel_diff", rel}, {"tolerance", 1e-2}, {"logits_sum", b.to(at::kDouble).sum().item<double>()}});
      HYFT_CHECK(std::isfinite(rel) && rel < 1e-2, "decode check failed: the graph's logits differ from the eager "
                 "step's by ", rel, " (relative)");
    }
  }
  for (const int64_t n : o.streams) {
    HYFT_CHECK(n >= 1, "--streams: stream counts must be positive");
    generate::EngineOptions eo;
    eo.slots = n;
    eo.max_len = o.prompt_len + o.new_tokens;
    eo.max_queue = n;
    generate::Engine engine(*model, eo);
    auto run = [&](int64_t tokens) {  // n requests of `tokens` new tokens each; seconds to the last
      const at::Tensor prompts = at::randint(0, cfg.vocab_size, {n, o.prompt_len}, at::kLong);
      for (int64_t i = 0; i < n; ++i) {
        generate::Request r;
        r.prompt.assign(prompts[i].data_ptr<int64_t>(), prompts[i].data_ptr<int64_t>() + o.prompt_len);
        // greedy, or sampled; no stop ids: exactly `tokens` tokens
        r.settings.sampling = o.sample ? generate::SamplingSettings{0.8, 0.95, 0, 1.1}
                                       : generate::SamplingSettings{0.0, 1.0, 0, 1.0};
        r.settings.seed = uint64_t(i);
        r.settings.max_new_tokens = tokens;
        HYFT_CHECK(engine.submit(std::move(r)), "engine queue full");
      }
      synchronize(device);
      const auto t0 = std::chrono::steady_clock::now();
      engine.run_until_idle();
      synchronize(device);
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    run(8);  // warm-up
    // Decode alone: the time of new_tokens minus the time of 1 (the prefills and the first token).
    const double with_prefill = run(o.new_tokens), prefill = run(1);
    const double decode_s = std::max(1e-9, with_prefill - prefill);
    const double tps = double(n) * double(o.new_tokens - 1) / decode_s;
    nlohmann::ordered_json j = {{"system", system}, {"shape", o.shape}, {"precision", device.is_cuda() ? "bf16" : "fp32"},
                                {"sampling", o.sample ? "sampled" : "greedy"},
                                {"streams", n}, {"prompt_len", o.prompt_len}, {"new_tokens", o.new_tokens},
                                {"decode_tokens_per_s", rounded(tps, 1)},
                                {"per_stream_tokens_per_s", rounded(tps / double(n), 1)},
                                {"ms_per_step", rounded(1000.0 * decode_s / double(o.new_tokens - 1), 3)},
                                {"prefill_ms", rounded(1000.0 * prefill, 1)}};
    j["weight_gb"] = rounded(weight_bytes / 1e9, 3);
    if (n == 1 && device.is_cuda())
      j["bandwidth_fraction"] = rounded(tps * weight_bytes / (o.bandwidth_tbs * 1e12), 3);
    out.push_back(j);
    if (o.profile && device.is_cuda()) {  // a step's kernels: (the run of 33 tokens) - (the run of 1) over 32
      const int64_t steps = 32;
      const KernelTimes a = profile_kernels([&] { run(steps + 1); }), b = profile_kernels([&] { run(1); });
      std::vector<std::pair<double, std::string>> rows;
      for (const auto& [name, v] : a.by_name) {
        const auto it = b.by_name.find(name);
        const double ns = v.first - (it == b.by_name.end() ? 0.0 : it->second.first);
        if (ns > 0) rows.push_back({ns, name});
      }
      std::sort(rows.rbegin(), rows.rend());
      out.push_back({{"profile", system}, {"streams", n},
                     {"gpu_us_per_step", rounded((a.total_ns - b.total_ns) / 1e3 / double(steps), 1)},
                     {"wall_us_per_step", rounded(1e6 * decode_s / double(o.new_tokens - 1), 1)}});
      for (size_t i = 0; i < std::min<size_t>(rows.size(), 10); ++i) {
        const auto& name = rows[i].second;
        const int64_t launches = a.by_name.at(name).second - (b.by_name.count(name) ? b.by_name.at(name).second : 0);
        out.push_back({{"kernel", name.substr(0, 90)}, {"us_per_step", rounded(rows[i].first / 1e3 / double(steps), 1)},
                       {"launches_per_step", rounded(double(launches) / double(steps), 1)}});
      }
    }
  }
  return out;
}

}  // namespace hyft::recipes
