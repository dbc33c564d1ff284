// The training loop: micro-batches with accumulation normalised by the
// target tokens of the whole optimizer step, autocast with fp32 master weights,
// dynamic loss scaling for fp16, gradient checkpointing, clipping, AdamW with a
// warmup schedule, held-out evaluation keeping the best weights, atomic
// checkpoints, exact resume, SIGINT/SIGTERM, non-finite and out-of-memory stops,
// progress, metrics.jsonl and TensorBoard events. What is trained and how it is
// saved (a LoRA adapter, or every weight) is the recipe's business: it passes the
// trainable parameters and a save function. Data parallel when given a
// communicator: each rank draws its share of the global batch, gradients are
// summed over the ranks during the last backward pass of a step, the loss is
// normalised by the target tokens of all ranks, held-out evaluation is split
// between them, and rank 0 alone writes files.
#pragma once

#include "data/batch.h"
#include "data/dataset.h"
#include "data/sampler.h"
#include "model/llama.h"
#include "train/activation_checkpoint.h"
#include "train/adamw.h"
#include "train/loss_scaler.h"
#include "train/lr_schedule.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace hyft::dist {
class Communicator;
class GradientReducer;
}  // namespace hyft::dist

namespace hyft::train {

struct TrainerOptions {
  at::ScalarType precision = at::kFloat;  // compute dtype under autocast
  at::Device device = at::kCPU;
  Checkpointing checkpointing = Checkpointing::Off;
  int64_t micro_batch = 4, grad_accum = 1;
  AdamWOptions adamw;
  Schedule schedule = Schedule::Cosine;
  int64_t warmup_steps = 0;
  double max_grad_norm = 1.0;  // 0: no clipping
  int64_t epochs = 1, max_steps = 0;  // max_steps > 0 wins over epochs
  bool packing = false;  // rows as long as the dataset's max_seq_len
  data::PaddingFree padding_free = data::PaddingFree::Auto;  // without packing: a micro-batch as one row of documents
  data::SamplerOptions sampling;
  LossScalerOptions scaler;
  int64_t max_nonfinite_steps = 3;  // bf16/fp32: stop after this many non-finite losses in a row
  int64_t eval_every = 0, save_every = 0, keep_last = 2, log_every = 10;
  std::string output_dir;
  std::string resume;  // "": fresh; "latest": newest checkpoint; else a checkpoint folder
  nlohmann::json config;  // the resolved configuration, stored in checkpoints
};

struct TrainerHooks {
  // Writes what a user keeps (an adapter folder, a model folder) to `dir`.
  std::function<void(const std::string& dir)> save;
  // Folder names under the output: <final_name>/ at the end, best-<final_name>/
  // for the best held-out loss, and inside each checkpoint.
  std::string final_name = "adapter";
  // Before resuming from `dir`: given the configuration that checkpoint was saved
  // with, refuses (a UserError) or accepts a resume with other settings.
  std::function<void(const nlohmann::json& saved_config, const std::string& dir)> check_resume;
};

struct TrainResult {
  int64_t start_step = 0;  // where the run began (a resumed checkpoint's step)
  int64_t steps = 0;
  double last_loss = 0.0;
  int exit_code = 0;  // 0, or 130/143 after SIGINT/SIGTERM
};

// What one optimizer step did.
struct StepStats {
  double loss = 0.0, grad_norm = 0.0, lr = 0.0;
  int64_t tokens = 0;
  bool skipped = false;
};

// Milliseconds of each phase of a step, when asked for (the device is
// synchronised between phases, which costs a little throughput).
struct PhaseTimes {
  double forward_ms = 0, backward_ms = 0, optimizer_ms = 0;
};

class Trainer {
 public:
  // `train`, `eval` and `comm` must outlive the trainer; `comm` (several
  // processes) makes it data parallel: options.sampling's rank and world are its.
  Trainer(model::LlamaForCausalLMImpl& model, std::vector<NamedParameter> trainable, const data::Dataset& train,
          const std::vector<data::Example>& eval, TrainerOptions options, TrainerHooks hooks,
          dist::Communicator* comm = nullptr);
  ~Trainer();
  // The whole run: steps, evaluation, checkpoints, resume, signals, logs.
  TrainResult run();
  // One optimizer step (0-based `step`) over micro-batches the sampler draws;
  // `bench` uses it alone. `phases`, when given, accumulates phase times.
  StepStats train_step(int64_t step, PhaseTimes* phases = nullptr);

 private:
  std::vector<data::Example const*> draw_examples(int64_t count);
  bool is_main() const;  // the rank that writes files (the only one without a communicator)
  double evaluate_held_out();
  nlohmann::json rank_state() const;
  void save(int64_t step, double best_eval);
  int64_t restore(const std::string& dir, double& best_eval);  // returns the checkpoint's step

  model::LlamaForCausalLMImpl& model_;
  const std::vector<data::Example>& train_;
  int64_t row_len_;  // packed rows: the dataset's max_seq_len
  const std::vector<data::Example>& eval_;
  TrainerOptions o_;
  TrainerHooks hooks_;
  AdamW optimizer_;
  LossScaler scaler_;
  data::Sampler sampler_;
  std::vector<int64_t> pending_;  // packing: examples drawn but not yet placed, oldest first
  int64_t total_steps_ = 0, consecutive_nonfinite_ = 0;
  int64_t tokens_seen_ = 0;  // tokens of every step so far, resumed runs included
  dist::Communicator* comm_ = nullptr;
  std::unique_ptr<dist::GradientReducer> reducer_;
  int64_t exchanges_ = 0;  // numbers the store exchanges of checkpoints
};

}  // namespace hyft::train
