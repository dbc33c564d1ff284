#include "recipes/export.h"

#include "adapters/merge.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/runtime.h"
#include "io/sharded_writer.h"
#include "recipes/hf_files.h"
#include "io/checkpoint_files.h"
#include "io/model_folder_writer.h"
#include "model/llama_config.h"

#include <ATen/ATen.h>
#include <filesystem>

namespace hyft::recipes {

using adapters::merge_lora;

namespace fs = std::filesystem;

namespace {

at::ScalarType dtype_of_config(const std::string& torch_dtype) {
  if (torch_dtype == "bfloat16") return at::kBFloat16;
  if (torch_dtype == "float16") return at::kHalf;
  return at::kFloat;
}

const std::string kWeightSuffix = ".weight";

}  // namespace

ExportSummary run_export(const ExportOptions& options) {
  HYFT_CHECK(!options.model_dir.empty() && !options.adapter_dir.empty() && !options.output_dir.empty(),
             "hyft export: --model, --adapter and --output are required; see 'hyft export --help'");
  const std::string& model_dir = options.model_dir;
  const std::string& out_dir = options.output_dir;
  const int64_t shard_bytes = io::parse_byte_size(options.shard_size, "--shard-size");
  const adapters::LoraAdapter adapter = adapters::read_peft_adapter(options.adapter_dir);
  const std::string config_path = (fs::path(model_dir) / "config.json").string();
  const model::LlamaConfig config = model::load_llama_config(config_path);
  const io::CheckpointFiles files(model_dir);
  ExportSummary summary;
  summary.dtype = options.dtype.empty() ? dtype_of_config(config.torch_dtype) : parse_precision(options.dtype, "--dtype");
  const double scaling = adapter.settings.scaling();
  const quant::Format quantized = quant::parse_format(options.quantize, "--quantize");
  // The layer projections a quantized base keeps as codes (adapters/quantize_base.h).
  auto is_layer_projection = [](const std::string& module) {
    if (module.rfind("model.layers.", 0) != 0) return false;
    const std::string last = module.substr(module.rfind('.') + 1);
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
      if (last == p) return true;
    return false;
  };

  // Every adapted module must exist in the base with the adapter's shapes.
  for (const auto& [module, ab] : adapter.weights) {
    const std::string key = module + kWeightSuffix;
    HYFT_CHECK(files.contains(key), "the adapter wraps '", module, "', which ", model_dir,
               " does not have; the adapter was trained for another base model");
    const auto& shape = files.entry(key).shape;
    HYFT_CHECK(shape.size() == 2 && ab.first.size(1) == shape[1] && ab.second.size(0) == shape[0],
               "the adapter's '", module, "' has lora_A ", ab.first.sizes(), " and lora_B ", ab.second.sizes(),
               " but the base weight is ", c10::IntArrayRef(shape),
               " (out, in); the adapter was trained for another base model");
  }

  // Modules trained whole replace the base's (their row count is the trained vocabulary).
  std::optional<int64_t> vocab;
  for (const auto& [module, w] : adapter.saved_modules) {
    HYFT_CHECK(files.contains(module + kWeightSuffix), "the adapter saves '", module, "', which ", model_dir,
               " does not have");
    const auto& shape = files.entry(module + kWeightSuffix).shape;
    HYFT_CHECK(shape.size() == 2 && w.dim() == 2 && shape[1] == w.size(1), "the adapter's saved ", module,
               " weight has shape ", w.sizes(), " but the base's is ", c10::IntArrayRef(shape),
               "; the adapter was trained for another base model");
    if (w.size(0) != shape[0]) vocab = w.size(0);
  }
  HYFT_CHECK(!vocab || config.tie_word_embeddings || adapter.saved_modules.size() == 2,
             options.adapter_dir, ": the adapter grew the vocabulary to ", vocab.value_or(0), " tokens but saves only ",
             adapter.saved_modules.begin()->first, "; embed_tokens and lm_head must both be saved");

  for (const auto& [module, w] : adapter.base_weights)
    HYFT_CHECK(c10::IntArrayRef(files.entry(module + kWeightSuffix).shape) == w.sizes(), "the adapter's saved ",
               module, " weight has shape ", w.sizes(), " but the base's is ",
               c10::IntArrayRef(files.entry(module + kWeightSuffix).shape));

  std::vector<io::TensorSpec> specs;
  for (const auto& key : files.keys()) {
    int64_t numel = 1;
    const auto saved = adapter.saved_modules.find(key.substr(0, key.size() - std::min(key.size(), kWeightSuffix.size())));
    if (saved != adapter.saved_modules.end()) numel = saved->second.numel();
    else
      for (int64_t d : files.entry(key).shape) numel *= d;
    specs.push_back({key, numel * int64_t(c10::elementSize(summary.dtype))});
    summary.bytes += specs.back().bytes;
  }

  // What the adapter was trained with travels into the folder (hyft.json beside it).
  const TrainedWith trained_with = read_trained_with(options.adapter_dir).value_or(TrainedWith{});
  const TrainedFolder trained = trained_folder(model_dir, trained_with);
  io::ModelFolderOptions folder;
  folder.source_dir = model_dir;
  folder.config = trained.config;
  if (vocab) folder.config["vocab_size"] = *vocab;
  folder.files = trained.files;
  folder.dtype = summary.dtype;
  folder.shard_bytes = shard_bytes;
  folder.replace = options.force;
  Progress progress("export", int64_t(specs.size()), options.progress);
  summary.shards = int64_t(io::write_model_folder(out_dir, specs, folder, [&](const std::string& key) {
    progress.advance();
    ++summary.tensors;
    at::Tensor w = files.tensor(key);
    if (key.size() > kWeightSuffix.size()) {
      const std::string module = key.substr(0, key.size() - kWeightSuffix.size());
      const auto base = adapter.base_weights.find(module);  // PEFT's saved copy wins, as in PEFT
      if (base != adapter.base_weights.end()) w = base->second;
      const auto saved = adapter.saved_modules.find(module);  // a module trained whole
      if (saved != adapter.saved_modules.end()) w = saved->second;
      if (quantized != quant::Format::None && is_layer_projection(module) && w.dim() == 2)
        w = quant::QuantizedWeight::from(w, quantized).dequantize();  // what training saw
      const auto it = adapter.weights.find(module);
      if (it != adapter.weights.end()) {
        ++summary.merged;
        return merge_lora(w, it->second.first, it->second.second, scaling, summary.dtype);
      }
    }
    return w.to(summary.dtype);
  }));
  progress.finish();
  return summary;
}

}  // namespace hyft::recipes
