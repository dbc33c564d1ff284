// The benchmark recipe behind `hyft bench`: the trainer's own step (LoRA or every
// weight) timed on random tokens for a named model shape, reported with the fields
// of the reference peer (bench/peers/hf_peft_bench.py) so both compare in one run.
#pragma once

#include "adapters/lora_settings.h"
#include "attention/hybrid_attention.h"
#include "data/batch.h"
#include "train/activation_checkpoint.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hyft::recipes {

struct BenchOptions {
  std::string shape = "1.3b";  // tiny, 1.3b, 7b or 8b (public checkpoints' config.json values)
  int64_t seq = 2048;          // tokens per sequence
  int64_t micro_batch = 8;     // sequences per step
  int64_t steps = 10, warmup = 3;  // timed steps, after untimed ones
  train::Checkpointing checkpointing = train::Checkpointing::Full;
  adapters::LoraSettings lora;
  bool full = false;  // every weight trains, no adapter
  std::string quantize = "none";  // the frozen base as nf4, nf4-dq, int8 or int4 codes (QLoRA)
  attention::HybridSettings attention;
  // Variable-length records (lengths uniform in [min_len, max_len]) instead of full
  // random rows: packed into rows of `seq` tokens, or (variable_length) batched
  // micro_batch records at a time, padded or padding-free as `padding_free` says;
  // tokens_per_s counts real tokens.
  bool packing = false;
  bool variable_length = false;
  data::PaddingFree padding_free = data::PaddingFree::Auto;
  int64_t min_len = 100, max_len = 1500;
  std::string device = "auto";
  bool profile = false;        // forward, backward and optimizer times (synchronising between them)
  double peak_tflops = 790.0;  // bf16 dense matmul rate of the GPU, for MFU (H200: 790)
};

// One JSON object: tokens_per_s, step_ms, peak_mem_gib, mfu, loss and the settings.
nlohmann::ordered_json run_bench(const BenchOptions& options);

// Decoding through the serving engine (generate/engine.h): `streams` requests of
// `prompt_len` random tokens, each generating exactly `new_tokens`, submitted at
// once; the model in bf16 (CUDA) with random weights of the named shape. One JSON
// object per stream count: decode tokens/s over every stream, per stream, and for
// one stream the share of the memory-bandwidth limit (weight bytes / bandwidth a token).
struct DecodeBenchOptions {
  std::string shape = "1.3b";
  std::vector<int64_t> streams = {1, 32};
  int64_t prompt_len = 128, new_tokens = 256;
  std::string device = "auto";
  double bandwidth_tbs = 4.8;  // H200's HBM3e
  bool check = false;  // first: a decoding step as a CUDA graph against the eager step (a UserError beyond 1e-2)
  std::string quantize = "none";  // the layers' projections as nf4, int8 or int4 codes
  bool profile = false;  // then the GPU kernels of a decoding step (PyTorch's profiler), one JSON line each
  bool sample = false;   // sampled decoding (temperature 0.8, top_p 0.95, repetition penalty 1.1) instead of greedy
};
std::vector<nlohmann::ordered_json> run_decode_bench(const DecodeBenchOptions& options);

}  // namespace hyft::recipes
