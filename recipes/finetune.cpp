#include "recipes/finetune.h"

#include "adapters/lora_linear.h"
#include "adapters/peft_format.h"
#include "common/error.h"
#include "common/interrupt.h"
#include "common/runtime.h"
#include "common/strings.h"
#include "io/remove_tree.h"
#include "io/model_folder_writer.h"
#include "recipes/hf_files.h"
#include "recipes/processes.h"

#include <ATen/ATen.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

namespace hyft::recipes {

using namespace adapters;

namespace fs = std::filesystem;

nlohmann::json resolved_config(const FinetuneOptions& o) {
  const auto& t = o.trainer;
  nlohmann::json j = {
      {"model", o.model.model_dir}, {"device", o.model.device}, {"precision", o.model.precision},
      {"quantize", o.model.quantize},
      {"window_size", o.model.window_size ? nlohmann::json(*o.model.window_size) : nlohmann::json()},
      {"global_ratio", o.model.global_ratio ? nlohmann::json(*o.model.global_ratio) : nlohmann::json()},
      {"tokenizer", o.model.tokenizer_file}, {"train", o.train_file}, {"eval", o.eval_file},
      {"eval_split", o.eval_split}, {"seed", o.seed}, {"full", o.full},
      {"targets", o.lora.targets}, {"lora_r", o.lora.r}, {"lora_alpha", o.lora.alpha},
      {"lora_dropout", o.lora.dropout}, {"use_rslora", o.lora.use_rslora},
      {"modules_to_save", o.lora.modules_to_save}, {"add_special_tokens", o.add_special_tokens},
      {"max_seq_len", o.data.tokens.max_seq_len}, {"overlength", data::overlength_name(o.data.tokens.overlength)},
      {"train_on_prompt", o.data.tokens.train_on_prompt}, {"chat_template", o.data.records.chat_template},
      {"label_field", o.data.records.label_field}, {"weight_field", o.data.records.weight_field}, {"skip_bad_lines", o.data.jsonl.skip_bad_lines},
      {"micro_batch", t.micro_batch}, {"grad_accum", t.grad_accum}, {"grad_checkpointing", train::checkpointing_name(t.checkpointing)},
      {"lr", t.adamw.lr}, {"beta1", t.adamw.beta1}, {"beta2", t.adamw.beta2}, {"eps", t.adamw.eps},
      {"weight_decay", t.adamw.weight_decay}, {"lr_schedule", train::schedule_name(t.schedule)},
      {"warmup_steps", t.warmup_steps}, {"max_grad_norm", t.max_grad_norm}, {"epochs", t.epochs},
      {"max_steps", t.max_steps}, {"packing", t.packing}, {"sampling", data::sampling_name(t.sampling.kind)},
      {"balance_power", t.sampling.balance_power}, {"loss_scale_init", t.scaler.init_scale},
      {"eval_every", t.eval_every}, {"save_every", t.save_every}, {"keep_last", t.keep_last},
      {"log_every", t.log_every}, {"output", t.output_dir}};
  return j;
}

std::vector<std::string> changed_settings(const nlohmann::json& saved, const nlohmann::json& now) {
  static const std::set<std::string> harmless = {"log_every", "save_every", "keep_last", "eval_every", "eval",
                                                 "output", "device", "grad_checkpointing"};
  // The batch of a step is micro_batch x grad_accum x processes examples (or rows):
  // another split of the same batch (another number of GPUs) computes the same.
  static const std::set<std::string> batch_split = {"micro_batch", "grad_accum", "processes"};
  auto global_batch = [](const nlohmann::json& c) {
    auto get = [&](const char* k) { return c.contains(k) && c[k].is_number_integer() ? c[k].get<int64_t>() : 1; };
    return get("micro_batch") * get("grad_accum") * get("processes");
  };
  std::vector<std::string> out;
  if (global_batch(saved) != global_batch(now))
    out.push_back("batch (micro_batch x grad_accum x processes): " + std::to_string(global_batch(saved)) + " -> " +
                  std::to_string(global_batch(now)));
  for (const auto& [key, value] : now.items()) {
    if (harmless.count(key) || batch_split.count(key)) continue;
    const nlohmann::json before = saved.contains(key) ? saved[key] : nlohmann::json("(not recorded)");
    const bool same = before == value || (before.is_number() && value.is_number() &&
                                          before.get<double>() == value.get<double>());
    if (!same) out.push_back(key + ": " + before.dump() + " -> " + value.dump());
  }
  return out;
}

namespace {

// A fresh run may not start in a folder that holds another run's results. Every
// rank checks (so all refuse alike); only `change` (rank 0) removes anything.
void claim_output_folder(const FinetuneOptions& o, bool change) {
  const fs::path out(o.trainer.output_dir);
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    fail("--output ", out.string(), ": is a file, not a folder; choose a folder for the run");
  if (!fs::is_directory(out, ec)) return;
  // What interrupted writes of earlier runs left behind (checkpoints, adapters).
  const int64_t stale = !change ? 0 : io::remove_stale_temporaries(out.string()) +
                                       io::remove_stale_temporaries((out / "checkpoints").string());
  if (stale) std::printf("removed %lld unfinished folder(s) left by interrupted runs\n", static_cast<long long>(stale));
  if (!o.trainer.resume.empty()) return;
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(out, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == "checkpoints" || name == "adapter" || name == "best-adapter" || name == "model" ||
        name == "best-model" || name == "metrics.jsonl" || starts_with(name, "events.out.tfevents."))
      found.push_back(entry.path());
  }
  if (found.empty()) return;
  if (!o.overwrite) {
    std::string what;
    for (const auto& p : found) what += (what.empty() ? "" : ", ") + p.filename().string();
    fail("--output ", out.string(), ": holds another run (", what, "); continue it with --resume, choose a new "
         "--output, or pass --overwrite to clear it first");
  }
  if (!change) return;
  for (const auto& p : found) io::remove_tree(p.string());
  std::printf("cleared %s (--overwrite)\n", out.string().c_str());
}

// Several processes: this rank's device and its share of the draws.
std::unique_ptr<dist::Communicator> join_run(FinetuneOptions& o) {
  auto comm = join_processes(o.model.device, o.dist_timeout_s);
  if (comm) {
    o.trainer.sampling.rank = comm->rank();
    o.trainer.sampling.world = comm->world();
  }
  return comm;
}

// --add-special-tokens: the tokenizer learns the new tokens and the vocabulary grows
// to hold them (new rows: the mean of the old, as transformers does); an adapter then
// trains embed_tokens and lm_head whole, or the new rows could never learn.
void add_tokens(FinetuneOptions& o, tokenizer::Tokenizer* tok, model::LlamaForCausalLMImpl& model) {
  if (o.add_special_tokens.empty()) return;
  HYFT_CHECK(tok, "--add-special-tokens needs a tokenizer: the model folder has no tokenizer.model; pass --tokenizer");
  const int64_t before = tok->vocab_size();
  const int64_t added = tok->add_special_tokens(o.add_special_tokens);
  std::printf("added %lld special token(s) to the tokenizer (ids %lld..%lld); %lld already in its vocabulary\n",
              static_cast<long long>(added), static_cast<long long>(before),
              static_cast<long long>(tok->vocab_size() - 1),
              static_cast<long long>(int64_t(o.add_special_tokens.size()) - added));
  if (tok->vocab_size() <= model.config().vocab_size) return;  // room in the embedding already
  HYFT_CHECK(o.full || !model.config().tie_word_embeddings, "--add-special-tokens: this model ties lm_head to "
             "embed_tokens (tie_word_embeddings), so an adapter cannot train the new tokens' rows; use --full");
  std::printf("vocabulary %lld -> %lld tokens (new rows: the mean of the old ones)\n",
              static_cast<long long>(model.config().vocab_size), static_cast<long long>(tok->vocab_size()));
  model.resize_vocab(tok->vocab_size());
  if (o.full) return;
  auto& save = o.lora.modules_to_save;
  if (save.empty()) {
    save = {"embed_tokens", "lm_head"};
    std::printf("training embed_tokens and lm_head whole beside the adapter (modules_to_save), so the new tokens "
                "are learned\n");
  }
  for (const char* m : {"embed_tokens", "lm_head"})
    HYFT_CHECK(std::find(save.begin(), save.end(), m) != save.end(), "--add-special-tokens grows the vocabulary, so "
               "--modules-to-save must include embed_tokens and lm_head (the new rows are trained there)");
  validate(o.lora, "--modules-to-save");
}

}  // namespace

int run_finetune(FinetuneOptions o) {
  HYFT_CHECK(!o.trainer.output_dir.empty(), "hyft finetune: --output is required");
  const auto comm = join_run(o);
  claim_output_folder(o, !comm || comm->is_main());
  if (comm) comm->barrier();  // every rank has looked before rank 0 writes
  HYFT_CHECK(o.eval_file.empty() || o.eval_split == 0.0, "give --eval FILE or --eval-split, not both");
  validate(o.lora, "LoRA settings");
  o.trainer.config = resolved_config(o);
  o.trainer.config["processes"] = o.trainer.sampling.world;  // how the batch is split (see changed_settings)
  at::manual_seed(o.seed);
  o.trainer.sampling.seed = o.seed;
  model::LoadOptions load = load_options(o.model);
  o.trainer.precision = load.dtype;
  o.trainer.device = load.device;
  // The frozen base is stored in the compute dtype; whatever trains is float32.
  load.dtype = o.full ? at::kFloat : o.trainer.precision;
  if (std::getenv("HYFT_TEST_SIGNAL_WHILE_LOADING")) std::raise(SIGTERM);  // tests: the handler is already there
  HYFT_CHECK(!(o.full && o.model.quantize != "none"), "--full trains every weight, so none can stay quantized; "
             "drop --quantize or train an adapter");
  ModelOptions dense = o.model;
  dense.quantize = "none";  // quantized after the adapter wraps the projections (it reads their shapes)
  auto model = load_model(dense, load);  // no adapter_dir: a fresh adapter is made below
  stop_if_interrupted("loading the model");
  const auto tok = find_tokenizer(o.model);
  add_tokens(o, tok.get(), *model);
  const int64_t vocab = model->config().vocab_size;
  if (tok) tokenizer::check_fits_model(*tok, vocab);
  LoraModules modules;
  if (o.full) {
    unfreeze_all(*model);
  } else {
    modules = apply_lora(*model, o.lora);
    quantize(*model, o.model);
  }
  std::printf("%s\n", format_parameter_count(count_parameters(*model)).c_str());

  resolve_chat_template(o.data.records, o.model);
  auto train = data::load_dataset(o.train_file, tok.get(), vocab, o.data);
  std::vector<data::Example> held_out;
  if (!o.eval_file.empty()) held_out = data::load_dataset(o.eval_file, tok.get(), vocab, o.data).examples;
  stop_if_interrupted("reading the data");
  if (o.eval_split > 0) std::tie(train.examples, held_out) = data::split_holdout(std::move(train.examples), o.eval_split, o.seed);
  if (o.trainer.sampling.kind == data::SamplingKind::Weighted) {
    bool any = false;
    for (const auto& ex : train.examples) any |= ex.weight != 1.0;
    HYFT_CHECK(any, o.train_file, ": --sampling weighted, but no record carries a weight other than 1 in the field '",
               o.data.records.weight_field, "', so every draw would be uniform; set --weight-field to the field "
               "that holds the weights, or use --sampling uniform or balanced");
  }
  const auto& s = train.stats;
  int64_t train_tokens = 0, held_out_tokens = 0;  // after the split: held-out tokens are not training tokens
  for (const auto& ex : train.examples) train_tokens += int64_t(ex.input_ids.size());
  for (const auto& ex : held_out) held_out_tokens += int64_t(ex.input_ids.size());
  std::printf("data: %zu training examples (%lld tokens, %lld truncated, %lld dropped), %zu held out (%lld tokens)\n",
              train.examples.size(), static_cast<long long>(train_tokens), static_cast<long long>(s.truncated),
              static_cast<long long>(s.dropped_overlength + s.dropped_no_target), held_out.size(),
              static_cast<long long>(held_out_tokens));

  // What travels with the adapter or model: the attention rule, the chat template.
  TrainedWith trained_with;
  trained_with.attention = model->attention_settings;
  if (tok)
    for (const auto& t : tok->added_tokens()) trained_with.added_tokens.push_back(t.content);
  if (s.records_by_kind.count(data::kind_name(data::RecordKind::Chat)))
    trained_with.chat_template = o.data.records.chat_template;

  std::vector<train::NamedParameter> trainable;
  for (const auto& item : model->named_parameters())
    if (item.value().requires_grad())
      trainable.push_back({item.key(), item.value(), train::default_decay(item.value())});

  train::TrainerHooks hooks;
  hooks.final_name = o.full ? "model" : "adapter";
  const std::string base_name = fs::absolute(o.model.model_dir).lexically_normal().string();
  if (o.full) {
    hooks.save = [&](const std::string& dir) {  // every weight, under its Hugging Face name
      std::map<std::string, at::Tensor> weights;
      std::vector<io::TensorSpec> specs;
      for (const auto& item : model->named_parameters()) {
        weights[item.key()] = item.value();
        specs.push_back({item.key(), item.value().numel() * 4});
      }
      const TrainedFolder trained = trained_folder(o.model.model_dir, trained_with);
      io::ModelFolderOptions folder;
      folder.source_dir = o.model.model_dir;
      folder.config = trained.config;
      folder.config["vocab_size"] = model->config().vocab_size;  // grown by --add-special-tokens
      folder.files = trained.files;
      folder.replace = true;
      io::write_model_folder(dir, specs, folder, [&](const std::string& key) {
        return weights.at(key).detach().to(at::kCPU, at::kFloat);
      });
    };
  } else {
    hooks.save = [&, base_name](const std::string& dir) {
      auto adapter = adapter_from_modules(*model, modules, o.lora, base_name);
      adapter.extra_files[kTrainedWithFile] = to_text(trained_with);
      // New tokens: the tokenizer travels with the adapter, so AutoTokenizer on the
      // adapter folder (and hyft) numbers them as training did.
      if (tok && !tok->added_tokens().empty())
        for (auto& [name, content] : adapter_tokenizer_files(*tok, trained_with, model->config()))
          adapter.extra_files[name] = std::move(content);
      write_peft_adapter(dir, adapter);
    };
  }
  hooks.check_resume = [&](const nlohmann::json& saved, const std::string& dir) {
    if (saved.is_null()) return;  // a checkpoint from before settings were recorded
    const auto changes = changed_settings(saved, o.trainer.config);
    if (changes.empty()) return;
    std::string list;
    for (const auto& c : changes) list += "\n  " + c;
    HYFT_CHECK(o.accept_changes, dir, ": this run's settings differ from the checkpoint's:", list,
               "\nresume with the checkpoint's settings, or pass --accept-changes to continue with the new ones");
    std::printf("resuming with changed settings (--accept-changes):%s\n", list.c_str());
  };
  train::Trainer trainer(*model, std::move(trainable), train, held_out, o.trainer, hooks, comm.get());
  const auto result = trainer.run();
  if (result.exit_code == 0 && result.steps > result.start_step)
    std::printf("done: %lld steps, final loss %.4f; written to %s/%s\n", static_cast<long long>(result.steps),
                result.last_loss, o.trainer.output_dir.c_str(), hooks.final_name.c_str());
  return result.exit_code;
}

}  // namespace hyft::recipes
