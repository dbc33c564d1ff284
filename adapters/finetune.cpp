#include "adapters/finetune.h"

#include "adapters/lora_linear.h"
#include "adapters/peft_format.h"
#include "common/error.h"
#include "io/model_folder_writer.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <filesystem>
#include <map>

namespace hyft::adapters {

namespace fs = std::filesystem;

int run_finetune(FinetuneOptions o) {
  HYFT_CHECK(!o.trainer.output_dir.empty(), "hyft finetune: --output is required");
  HYFT_CHECK(o.eval_file.empty() || o.eval_split == 0.0, "give --eval FILE or --eval-split, not both");
  validate(o.lora, "LoRA settings");
  // The frozen base is stored in the compute dtype; whatever trains is float32.
  o.load.dtype = o.full ? at::kFloat : o.trainer.precision;
  auto model = model::load_pretrained(o.model_dir, o.load);
  LoraModules modules;
  if (o.full) {
    unfreeze_all(*model);
  } else {
    modules = apply_lora(*model, o.lora);
  }
  std::printf("%s\n", format_parameter_count(count_parameters(*model)).c_str());

  const auto tok = tokenizer::find_tokenizer(o.model_dir, o.tokenizer_file);
  const int64_t vocab = model->config().vocab_size;
  if (tok) tokenizer::check_fits_model(*tok, vocab);
  auto train = data::load_dataset(o.train_file, tok.get(), vocab, o.data);
  std::vector<data::Example> held_out;
  if (!o.eval_file.empty()) held_out = data::load_dataset(o.eval_file, tok.get(), vocab, o.data).examples;
  if (o.eval_split > 0) std::tie(train.examples, held_out) = data::split_holdout(std::move(train.examples), o.eval_split, o.trainer.sampling.seed);
  const auto& s = train.stats;
  std::printf("data: %zu training examples (%lld tokens, %lld truncated, %lld dropped), %zu held out\n",
              train.examples.size(), static_cast<long long>(s.tokens), static_cast<long long>(s.truncated),
              static_cast<long long>(s.dropped_overlength + s.dropped_no_target), held_out.size());

  std::vector<train::NamedParameter> trainable;
  for (const auto& item : model->named_parameters())
    if (item.value().requires_grad())
      trainable.push_back({item.key(), item.value(), train::default_decay(item.key(), item.value())});

  train::TrainerHooks hooks;
  hooks.final_name = o.full ? "model" : "adapter";
  const std::string base_name = fs::absolute(o.model_dir).lexically_normal().string();
  if (o.full) {
    hooks.save = [&](const std::string& dir) {  // every weight, under its Hugging Face name
      std::map<std::string, at::Tensor> weights;
      std::vector<io::TensorSpec> specs;
      for (const auto& item : model->named_parameters()) {
        weights[item.key()] = item.value();
        specs.push_back({item.key(), item.value().numel() * 4});
      }
      io::ModelFolderOptions folder;
      folder.source_dir = o.model_dir;
      folder.replace = true;
      io::write_model_folder(dir, specs, folder, [&](const std::string& key) {
        return weights.at(key).detach().to(at::kCPU, at::kFloat);
      });
    };
  } else {
    hooks.save = [&, base_name](const std::string& dir) {
      write_peft_adapter(dir, adapter_from_modules(modules, o.lora, base_name));
    };
  }
  train::Trainer trainer(*model, std::move(trainable), train.examples, held_out, o.trainer, hooks);
  const auto result = trainer.run();
  if (result.exit_code == 0)
    std::printf("done: %lld steps, final loss %.4f; written to %s/%s\n", static_cast<long long>(result.steps),
                result.last_loss, o.trainer.output_dir.c_str(), hooks.final_name.c_str());
  return result.exit_code;
}

}  // namespace hyft::adapters
