// The fine-tuning recipe behind `hyft finetune`: loads the base model (frozen
// weights in the compute dtype, fp32 master weights for what trains), wraps it
// with LoRA (or unfreezes everything with --full), loads the data, and runs the
// trainer, which saves PEFT adapters (or, with --full, whole model folders).
#pragma once

#include "adapters/lora_settings.h"
#include "data/dataset.h"
#include "model/load.h"
#include "train/trainer.h"

#include <string>

namespace hyft::adapters {

struct FinetuneOptions {
  std::string model_dir, train_file, eval_file, tokenizer_file;
  double eval_split = 0.0;
  data::DatasetOptions data;
  LoraSettings lora;
  bool full = false;
  model::LoadOptions load;  // device and attention; dtype is decided by the recipe
  train::TrainerOptions trainer;
};

// Runs the whole recipe; returns the exit code (0, or 130/143 after a signal).
int run_finetune(FinetuneOptions options);

}  // namespace hyft::adapters
