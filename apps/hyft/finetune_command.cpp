// hyft finetune: LoRA (or full) fine-tuning on a JSONL dataset (SPEC 5 and 6).
#include "commands.h"

#include "adapters/finetune.h"
#include "common/error.h"
#include "common/runtime.h"
#include "data_options.h"
#include "model_options.h"

#include <nlohmann/json.hpp>

namespace hyft::app {

int finetune_command(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Fine-tune a model with LoRA (or every weight with --full) on a JSONL dataset.");
  opts.add_options()
      ("train", "training JSONL", cxxopts::value<std::string>())
      ("output", "output folder: adapter/, best-adapter/, checkpoints/, metrics.jsonl, TensorBoard events",
       cxxopts::value<std::string>())
      ("eval", "held-out JSONL", cxxopts::value<std::string>())
      ("eval-split", "hold out this fraction of --train instead (0 = none)",
       cxxopts::value<double>()->default_value("0"))
      ("eval-every", "evaluate every N steps (0 = only at the end)", cxxopts::value<int64_t>()->default_value("0"));
  add_model_options(opts, /*with_adapter=*/false);
  opts.add_options("lora")
      ("targets", "projections LoRA wraps (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, or all)",
       cxxopts::value<std::string>()->default_value("q_proj,v_proj"))
      ("lora-r", "LoRA rank", cxxopts::value<int64_t>()->default_value("16"))
      ("lora-alpha", "LoRA alpha (scaling alpha / r)", cxxopts::value<double>()->default_value("32"))
      ("lora-dropout", "dropout on the adapter input", cxxopts::value<double>()->default_value("0.1"))
      ("use-rslora", "scale by alpha / sqrt(r)")
      ("full", "train every weight instead of an adapter");
  opts.add_options("training")
      ("micro-batch", "examples (or packed rows) per forward pass", cxxopts::value<int64_t>()->default_value("4"))
      ("grad-accum", "micro-batches per optimizer step", cxxopts::value<int64_t>()->default_value("1"))
      ("grad-checkpointing", "recompute each decoder layer in the backward pass (less memory)")
      ("lr", "peak learning rate", cxxopts::value<double>()->default_value("2e-4"))
      ("beta1", "AdamW beta1", cxxopts::value<double>()->default_value("0.9"))
      ("beta2", "AdamW beta2", cxxopts::value<double>()->default_value("0.999"))
      ("eps", "AdamW epsilon", cxxopts::value<double>()->default_value("1e-8"))
      ("weight-decay", "AdamW decoupled weight decay", cxxopts::value<double>()->default_value("0"))
      ("lr-schedule", "constant, linear or cosine", cxxopts::value<std::string>()->default_value("cosine"))
      ("warmup-steps", "linear warmup steps", cxxopts::value<int64_t>()->default_value("0"))
      ("max-grad-norm", "clip the gradient norm (0 = off)", cxxopts::value<double>()->default_value("1.0"))
      ("epochs", "passes over the data", cxxopts::value<int64_t>()->default_value("1"))
      ("max-steps", "optimizer steps (overrides --epochs)", cxxopts::value<int64_t>()->default_value("0"))
      ("seed", "seed for sampling, dropout and initialisation", cxxopts::value<uint64_t>()->default_value("42"))
      ("packing", "pack documents into rows of --max-seq-len")
      ("sampling", "uniform, weighted or balanced", cxxopts::value<std::string>()->default_value("uniform"))
      ("balance-power", "p of balanced sampling: weight 1 / count(label)^p",
       cxxopts::value<double>()->default_value("1"))
      ("loss-scale-init", "fp16 initial loss scale", cxxopts::value<double>()->default_value("65536"))
      ("save-every", "checkpoint every N steps (0 = none)", cxxopts::value<int64_t>()->default_value("0"))
      ("keep-last", "checkpoints to keep", cxxopts::value<int64_t>()->default_value("2"))
      ("resume", "continue from the latest checkpoint, or from PATH",
       cxxopts::value<std::string>()->implicit_value("latest"))
      ("log-every", "progress line every N steps", cxxopts::value<int64_t>()->default_value("10"));
  add_data_options(opts);
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  for (const char* required : {"model", "train", "output"})
    HYFT_CHECK(args.count(required), "hyft finetune: --", required, " is required; see 'hyft finetune --help'");

  adapters::FinetuneOptions o;
  o.model_dir = args["model"].as<std::string>();
  o.train_file = args["train"].as<std::string>();
  if (args.count("eval")) o.eval_file = args["eval"].as<std::string>();
  if (args.count("tokenizer")) o.tokenizer_file = args["tokenizer"].as<std::string>();
  o.eval_split = args["eval-split"].as<double>();
  o.data = data_options_from(args);
  o.lora.targets = adapters::parse_targets(args["targets"].as<std::string>(), "--targets");
  o.lora.r = args["lora-r"].as<int64_t>();
  o.lora.alpha = args["lora-alpha"].as<double>();
  o.lora.dropout = args["lora-dropout"].as<double>();
  o.lora.use_rslora = args.count("use-rslora") > 0;
  adapters::validate(o.lora, "--lora-r/--lora-alpha/--lora-dropout");
  o.full = args.count("full") > 0;

  o.load = load_options_from(args);  // the recipe stores the frozen base in the compute dtype

  auto& t = o.trainer;
  t.precision = o.load.dtype;
  t.device = o.load.device;
  t.grad_checkpointing = args.count("grad-checkpointing") > 0;
  t.micro_batch = args["micro-batch"].as<int64_t>();
  t.grad_accum = args["grad-accum"].as<int64_t>();
  t.adamw = {args["lr"].as<double>(), args["beta1"].as<double>(), args["beta2"].as<double>(),
             args["eps"].as<double>(), args["weight-decay"].as<double>()};
  HYFT_CHECK(t.adamw.lr > 0, "--lr must be positive");
  t.schedule = train::parse_schedule(args["lr-schedule"].as<std::string>(), "--lr-schedule");
  t.warmup_steps = args["warmup-steps"].as<int64_t>();
  t.max_grad_norm = args["max-grad-norm"].as<double>();
  t.epochs = args["epochs"].as<int64_t>();
  t.max_steps = args["max-steps"].as<int64_t>();
  t.packing = args.count("packing") > 0;
  t.max_seq_len = o.data.tokens.max_seq_len;
  t.sampling.kind = data::parse_sampling(args["sampling"].as<std::string>(), "--sampling");
  t.sampling.balance_power = args["balance-power"].as<double>();
  t.sampling.seed = args["seed"].as<uint64_t>();
  t.scaler.init_scale = args["loss-scale-init"].as<double>();
  t.eval_every = args["eval-every"].as<int64_t>();
  t.save_every = args["save-every"].as<int64_t>();
  t.keep_last = args["keep-last"].as<int64_t>();
  t.log_every = args["log-every"].as<int64_t>();
  t.output_dir = args["output"].as<std::string>();
  if (args.count("resume")) t.resume = args["resume"].as<std::string>();
  nlohmann::json config;
  for (const auto& kv : args.arguments()) config[kv.key()] = kv.value();
  t.config = config;

  at::manual_seed(t.sampling.seed);
  return adapters::run_finetune(std::move(o));
}

}  // namespace hyft::app
