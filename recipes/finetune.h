// The fine-tuning recipe behind `hyft finetune`: loads the base model (frozen
// weights in the compute dtype, fp32 master weights for what trains), wraps it
// with LoRA (or unfreezes everything with --full), loads the data (with a held-out
// part), seeds the run, and runs the trainer, which saves PEFT adapters (or, with
// --full, whole model folders) and checkpoints.
#pragma once

#include "adapters/lora_settings.h"
#include "data/dataset.h"
#include "recipes/model_setup.h"
#include "train/trainer.h"

#include <nlohmann/json.hpp>

#include <string>

namespace hyft::recipes {

struct FinetuneOptions {
  ModelOptions model;  // adapter_dir unused: the recipe trains a new adapter
  std::string train_file, eval_file;
  double eval_split = 0.0;  // hold out this fraction of the training file instead of --eval
  data::DatasetOptions data;
  adapters::LoraSettings lora;
  // Special tokens added to the tokenizer for this run (ChatML markers, ...): the
  // vocabulary grows as transformers' resize_token_embeddings, and an adapter then
  // trains embed_tokens and lm_head whole (lora.modules_to_save).
  std::vector<std::string> add_special_tokens;
  bool full = false;  // train every weight, no adapter
  uint64_t seed = 42;  // sampling, dropout, LoRA initialisation, the held-out split
  bool overwrite = false;       // clear an output folder that holds another run
  bool accept_changes = false;  // resume although settings differ from the checkpoint's (logged)
  int64_t dist_timeout_s = 600;  // several processes: the rendezvous and each collective give up after this
  train::TrainerOptions trainer;  // precision and device come from `model`
};

// Every setting of the run, as stored in its checkpoints.
nlohmann::json resolved_config(const FinetuneOptions& options);

// The settings of `now` that differ from `saved` and change what training
// computes ("lr: 0.003 -> 0.5"); logging, saving and evaluation cadence, the
// output path and the device are not among them, nor how a step's batch is split
// into micro-batches, accumulation and processes, as long as its size stays.
std::vector<std::string> changed_settings(const nlohmann::json& saved, const nlohmann::json& now);

// Runs the whole recipe; returns the exit code (0, or 130/143 after a signal).
int run_finetune(FinetuneOptions options);

}  // namespace hyft::recipes
