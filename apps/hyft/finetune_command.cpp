// hyft finetune: LoRA (or full) fine-tuning on a JSONL dataset (recipes/finetune.h).
#include "commands.h"

#include "common/error.h"
#include "common/interrupt.h"
#include "common/strings.h"
#include "recipes/finetune.h"
#include "shared_options.h"

namespace hyft::app {

int finetune_command(int argc, char** argv) {
  install_interrupt_handlers();  // first: a signal while loading stops the run cleanly
  recipes::FinetuneOptions o;
  auto& t = o.trainer;
  OptionTable opts(argv[0], "Fine-tune a model with LoRA (or every weight with --full) on a JSONL dataset. "
                            "Hugging Face's names (--learning-rate, --num-train-epochs, --per-device-train-batch-size, "
                            "--gradient-accumulation-steps, --output-dir, ...) are accepted too.");
  opts.optional("", "train", "training JSONL", o.train_file);
  opts.optional("", "output", "output folder: adapter/, best-adapter/, checkpoints/, metrics.jsonl, TensorBoard events",
                t.output_dir);
  opts.optional("", "eval", "held-out JSONL", o.eval_file);
  opts.value("", "eval-split", "hold out this fraction of --train instead (0 = none)", o.eval_split);
  opts.value("", "eval-every", "evaluate every N steps (0 = only at the end)", t.eval_every);
  add_model_options(opts, o.model, /*with_adapter=*/false);

  std::string targets = join_list(o.lora.targets);
  opts.value("lora", "targets",
             "projections LoRA wraps (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj, all, and lm_head)",
             targets);
  opts.value("lora", "lora-r", "LoRA rank", o.lora.r);
  opts.value("lora", "lora-alpha", "LoRA alpha (scaling alpha / r)", o.lora.alpha);
  opts.value("lora", "lora-dropout", "dropout on the adapter input", o.lora.dropout);
  opts.flag("lora", "use-rslora", "scale by alpha / sqrt(r)", o.lora.use_rslora);
  opts.flag("lora", "full", "train every weight instead of an adapter", o.full);
  std::string to_save = join_list(o.lora.modules_to_save), added = join_list(o.add_special_tokens);
  opts.value("lora", "modules-to-save",
             "modules trained whole beside the adapter, saved as PEFT's modules_to_save (embed_tokens, lm_head)",
             to_save);
  opts.value("lora", "add-special-tokens",
             "special tokens to add to the tokenizer, comma-separated (\"<|im_start|>,<|im_end|>\"); the vocabulary "
             "grows and embed_tokens and lm_head are trained whole",
             added);
  opts.check([&] {
    o.lora.targets = adapters::parse_targets(targets, "--targets");
    o.lora.modules_to_save = adapters::parse_modules_to_save(to_save, "--modules-to-save");
    o.add_special_tokens = split_list(added);
    adapters::validate(o.lora, "--lora-r/--lora-alpha/--lora-dropout");
  });

  opts.value("training", "micro-batch", "examples (or packed rows) per forward pass", t.micro_batch);
  opts.value("training", "grad-accum", "micro-batches per optimizer step", t.grad_accum);
  opts.choice("training", "grad-checkpointing",
              "recompute layers in the backward pass for less memory: full (every layer; the flag alone), "
              "selective (every second layer) or off",
              t.checkpointing, train::parse_checkpointing, train::checkpointing_name, "full");
  opts.value("training", "lr", "peak learning rate", t.adamw.lr);
  opts.value("training", "beta1", "AdamW beta1", t.adamw.beta1);
  opts.value("training", "beta2", "AdamW beta2", t.adamw.beta2);
  opts.value("training", "eps", "AdamW epsilon", t.adamw.eps);
  opts.value("training", "weight-decay", "AdamW decoupled weight decay", t.adamw.weight_decay);
  opts.choice("training", "lr-schedule", "constant, linear or cosine", t.schedule, train::parse_schedule,
              train::schedule_name);
  opts.value("training", "warmup-steps", "linear warmup steps", t.warmup_steps);
  opts.value("training", "max-grad-norm", "clip the gradient norm (0 = off)", t.max_grad_norm);
  opts.value("training", "epochs", "passes over the data", t.epochs);
  opts.value("training", "max-steps", "optimizer steps (overrides --epochs)", t.max_steps);
  opts.value("training", "seed", "seed for sampling, dropout and initialisation", o.seed);
  opts.flag("training", "packing", "pack documents into rows of --max-seq-len", t.packing);
  opts.choice("training", "padding-free", "without --packing: a micro-batch of records of different lengths as one "
              "row of documents, no padding computed (the same loss): auto (on CUDA when padding would be a tenth "
              "of the batch or more), on, off", t.padding_free, data::parse_padding_free, data::padding_free_name);
  opts.choice("training", "sampling", "uniform, weighted or balanced", t.sampling.kind, data::parse_sampling,
              data::sampling_name);
  opts.value("training", "balance-power", "p of balanced sampling: weight 1 / count(label)^p",
             t.sampling.balance_power);
  opts.value("training", "loss-scale-init", "fp16 initial loss scale", t.scaler.init_scale);
  opts.value("training", "save-every", "checkpoint every N steps (0 = none)", t.save_every);
  opts.value("training", "keep-last", "checkpoints to keep", t.keep_last);
  opts.optional_implicit("training", "resume", "continue from the latest checkpoint, or from PATH", t.resume,
                         "latest");
  opts.value("training", "log-every", "progress line every N steps", t.log_every);
  opts.value("training", "dist-timeout", "several processes (torchrun): seconds before a rank that does not answer "
             "(dead or hung) stops the others with an error", o.dist_timeout_s);
  opts.flag("training", "overwrite", "clear an --output folder that holds another run before starting", o.overwrite);
  opts.flag("training", "accept-changes", "resume although settings differ from the checkpoint's (they are listed)",
            o.accept_changes);
  add_tokenizer_option(opts, o.model, "data");
  add_data_options(opts, o.data);
  // Every numeric setting's range, for flags and YAML keys alike.
  opts.above<double>("lr", t.adamw.lr, 0.0);
  opts.within("beta1", t.adamw.beta1, 0.0, 1.0, /*hi_inclusive=*/false);
  opts.within("beta2", t.adamw.beta2, 0.0, 1.0, false);
  opts.at_least<double>("eps", t.adamw.eps, 0.0);
  opts.at_least<double>("weight-decay", t.adamw.weight_decay, 0.0);
  opts.at_least<double>("max-grad-norm", t.max_grad_norm, 0.0, "0 = no clipping");
  opts.at_least<int64_t>("micro-batch", t.micro_batch, 1);
  opts.at_least<int64_t>("grad-accum", t.grad_accum, 1);
  opts.at_least<int64_t>("epochs", t.epochs, 1);
  opts.at_least<int64_t>("max-steps", t.max_steps, 0, "0 = run --epochs");
  opts.at_least<int64_t>("warmup-steps", t.warmup_steps, 0);
  opts.at_least<int64_t>("save-every", t.save_every, 0, "0 = only at the end");
  opts.at_least<int64_t>("keep-last", t.keep_last, 0, "0 = keep every checkpoint");
  opts.at_least<int64_t>("eval-every", t.eval_every, 0, "0 = only at the end");
  opts.at_least<int64_t>("log-every", t.log_every, 1);
  opts.at_least<int64_t>("dist-timeout", o.dist_timeout_s, 1);
  opts.within("eval-split", o.eval_split, 0.0, 1.0, false, "0 = none");
  opts.within("balance-power", t.sampling.balance_power, 0.0, 1.0, true);
  opts.above<double>("loss-scale-init", t.scaler.init_scale, 0.0);
  // The names of Hugging Face's TrainingArguments (and YAML keys in their spelling).
  for (const auto& [hf, ours] : std::initializer_list<std::pair<const char*, const char*>>{
           {"learning-rate", "lr"}, {"num-train-epochs", "epochs"}, {"gradient-accumulation-steps", "grad-accum"},
           {"per-device-train-batch-size", "micro-batch"}, {"output-dir", "output"}, {"lr-scheduler-type", "lr-schedule"},
           {"gradient-checkpointing", "grad-checkpointing"}, {"max-seq-length", "max-seq-len"},
           {"adam-beta1", "beta1"}, {"adam-beta2", "beta2"}, {"adam-epsilon", "eps"}, {"save-steps", "save-every"},
           {"eval-steps", "eval-every"}, {"logging-steps", "log-every"}, {"save-total-limit", "keep-last"},
           {"resume-from-checkpoint", "resume"}, {"lora-rank", "lora-r"}, {"train-file", "train"}})
    opts.alias(hf, ours);
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!o.model.model_dir.empty(), argv[0], "model");
  require(!o.train_file.empty(), argv[0], "train");
  require(!t.output_dir.empty(), argv[0], "output");
  return recipes::run_finetune(std::move(o));
}

}  // namespace hyft::app
