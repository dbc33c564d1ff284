// hyft bench: training throughput of the trainer's step on random tokens for a
// named model shape (recipes/bench.h), one JSON line with the peer's fields.
#include "commands.h"

#include "adapters/lora_linear.h"
#include "common/strings.h"
#include "common/error.h"
#include "recipes/attention_bench.h"
#include "recipes/bench.h"

#include <cstdio>

namespace hyft::app {

int bench_command(int argc, char** argv) {
  recipes::BenchOptions o;
  OptionTable opts(argv[0], "Time LoRA (or full) training steps on random tokens for a named model shape; "
                            "prints one JSON line with the reference peer's fields.");
  opts.value("", "shape", "tiny, 1.3b, 7b or 8b", o.shape);
  opts.value("", "seq", "sequence length", o.seq);
  opts.value("", "micro-batch", "sequences per step", o.micro_batch);
  opts.value("", "steps", "timed steps", o.steps);
  opts.value("", "warmup", "untimed steps first", o.warmup);
  opts.flag("", "packing", "variable-length records packed into rows of --seq tokens (tokens/s counts real tokens)",
            o.packing);
  opts.flag("", "variable-length", "variable-length records batched --micro-batch at a time (no packing; tokens/s "
            "counts real tokens)", o.variable_length);
  opts.choice("", "padding-free", "with --variable-length: auto, on or off (as finetune's)", o.padding_free,
              data::parse_padding_free, data::padding_free_name);
  opts.value("", "min-len", "shortest record with --packing or --variable-length", o.min_len);
  opts.value("", "max-len", "longest record with --packing or --variable-length", o.max_len);
  opts.choice("", "grad-checkpointing", "full (the flag alone), selective (every second layer) or off (=false)",
              o.checkpointing, train::parse_checkpointing, train::checkpointing_name, "full");
  std::string targets = join_list(o.lora.targets);
  opts.value("lora", "targets", "LoRA targets", targets);
  opts.value("lora", "lora-r", "LoRA rank", o.lora.r);
  opts.value("lora", "lora-alpha", "LoRA alpha", o.lora.alpha);
  opts.flag("lora", "full", "train every weight instead of an adapter", o.full);
  opts.value("lora", "quantize", "the frozen base as nf4, nf4-dq, int8 or int4 codes (QLoRA; with --decode, the decoded "
             "base), or none", o.quantize);
  opts.value("", "window-size", "hybrid attention window (0 = full causal)", o.attention.window_size);
  opts.value("", "global-ratio", "hybrid attention global ratio", o.attention.global_ratio);
  opts.value("", "device", "cuda or cuda:N (cpu works, slowly)", o.device);
  opts.flag("", "profile", "also time forward, backward and optimizer separately (synchronising between them) and, on "
            "CUDA, two more steps' GPU time by kind (GEMM, attention, hyft's kernels, other) and top kernels; with "
            "--decode, list the GPU kernels of a decoding step",
            o.profile);
  opts.value("", "peak-tflops", "bf16 dense matmul rate of this GPU, for MFU", o.peak_tflops);
  bool attention = false;
  recipes::AttentionBenchOptions a;
  std::string seqs = "4096,16384";
  opts.flag("attention", "attention", "time the attention paths alone instead (forward + backward, the fields of "
            "bench/peers/attention_bench.py; --window-size and --global-ratio default to 512 and 0.1)", attention);
  opts.value("attention", "seqs", "sequence lengths for --attention", seqs);
  opts.value("attention", "heads", "heads for --attention", a.heads);
  opts.value("attention", "dim", "head dim for --attention", a.dim);
  // The spellings bench had before it shared finetune's names.
  opts.alias("batch", "micro-batch");
  opts.alias("rank", "lora-r");
  opts.alias("alpha", "lora-alpha");
  opts.alias_values("grad-ckpt", {{"0", "--grad-checkpointing=false"}, {"1", "--grad-checkpointing=true"}});
  opts.alias_values("mode", {{"lora", "--full=false"}, {"full", "--full=true"}});
  opts.check([&] { o.lora.targets = adapters::parse_targets(targets, "--targets"); });
  bool decode = false;
  recipes::DecodeBenchOptions d;
  std::string streams = "1,32";
  opts.flag("decode", "decode", "time decoding through the serving engine instead (hyft serve's path)", decode);
  opts.value("decode", "streams", "concurrent streams for --decode, comma-separated", streams);
  opts.value("decode", "prompt-len", "prompt tokens of each stream for --decode", d.prompt_len);
  opts.value("decode", "new-tokens", "tokens each stream generates for --decode", d.new_tokens);
  opts.flag("decode", "check", "with --decode: first compare a CUDA-graph decoding step with the eager one", d.check);
  opts.flag("decode", "sample", "with --decode: sample (temperature 0.8, top_p 0.95, repetition penalty 1.1, a seed a "
            "stream) instead of decoding greedily", d.sample);
  if (!parse_or_help(opts, argc, argv)) return 0;
  if (decode) {
    d.shape = o.shape;
    d.device = o.device;
    d.quantize = o.quantize;
    d.profile = o.profile;
    d.streams.clear();
    for (const auto& t : split_list(streams)) {
      HYFT_CHECK(value_problem(t, ValueKind::Integer).empty() && std::stoll(t) > 0, "--streams: '", t,
                 "' is not a stream count (comma-separated whole numbers > 0)");
      d.streams.push_back(std::stoll(t));
    }
    for (const auto& line : recipes::run_decode_bench(d)) std::printf("%s\n", line.dump().c_str());
    return 0;
  }
  if (attention) {
    a.seqs.clear();
    for (const auto& t : split_list(seqs)) {
      HYFT_CHECK(value_problem(t, ValueKind::Integer).empty() && std::stoll(t) > 1, "--seqs: '", t,
                 "' is not a sequence length (comma-separated whole numbers > 1)");
      a.seqs.push_back(std::stoll(t));
    }
    if (opts.given("window-size")) a.window = o.attention.window_size;
    if (opts.given("global-ratio")) a.global_ratio = o.attention.global_ratio;
    if (opts.given("steps")) a.reps = int(o.steps);
    for (const auto& line : recipes::run_attention_bench(a)) std::printf("%s\n", line.dump().c_str());
    return 0;
  }
  std::printf("%s\n", recipes::run_bench(o).dump().c_str());
  return 0;
}

}  // namespace hyft::app
