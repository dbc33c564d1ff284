// hyft bench: training throughput of the trainer's step on random tokens for a
// named model shape (recipes/bench.h), one JSON line with the peer's fields.
#include "commands.h"

#include "adapters/lora_linear.h"
#include "common/strings.h"
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
  opts.value("", "min-len", "shortest record with --packing", o.min_len);
  opts.value("", "max-len", "longest record with --packing", o.max_len);
  opts.flag("", "grad-checkpointing", "recompute each decoder layer in the backward pass (=false: off)",
            o.grad_checkpointing);
  std::string targets = join_list(o.lora.targets);
  opts.value("lora", "targets", "LoRA targets", targets);
  opts.value("lora", "lora-r", "LoRA rank", o.lora.r);
  opts.value("lora", "lora-alpha", "LoRA alpha", o.lora.alpha);
  opts.flag("lora", "full", "train every weight instead of an adapter", o.full);
  opts.value("", "window-size", "hybrid attention window (0 = full causal)", o.attention.window_size);
  opts.value("", "global-ratio", "hybrid attention global ratio", o.attention.global_ratio);
  opts.value("", "device", "cuda or cuda:N (cpu works, slowly)", o.device);
  opts.flag("", "profile", "also time forward, backward and optimizer separately (synchronising between them)",
            o.profile);
  opts.value("", "peak-tflops", "bf16 dense matmul rate of this GPU, for MFU", o.peak_tflops);
  // The spellings bench had before it shared finetune's names.
  opts.alias("batch", "micro-batch");
  opts.alias("rank", "lora-r");
  opts.alias("alpha", "lora-alpha");
  opts.alias_values("grad-ckpt", {{"0", "--grad-checkpointing=false"}, {"1", "--grad-checkpointing=true"}});
  opts.alias_values("mode", {{"lora", "--full=false"}, {"full", "--full=true"}});
  opts.check([&] { o.lora.targets = adapters::parse_targets(targets, "--targets"); });
  if (!parse_or_help(opts, argc, argv)) return 0;
  std::printf("%s\n", recipes::run_bench(o).dump().c_str());
  return 0;
}

}  // namespace hyft::app
