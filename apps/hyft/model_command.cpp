// hyft model init: a new model folder with random weights from a config.json,
// for experiments and the demo (nothing to download).
#include "commands.h"

#include "common/error.h"
#include "common/strings.h"
#include "common/runtime.h"
#include "data/records.h"
#include "io/json_file.h"
#include "io/model_folder_writer.h"
#include "model/llama.h"
#include "recipes/hf_files.h"
#include "tokenizer/tokenizer.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>

namespace hyft::app {

namespace {

int model_init(int argc, char** argv) {
  std::string config_path, out, tokenizer_file, dtype_name = "fp32", chat_template = "chatml";
  uint64_t seed = 0;
  bool force = false;
  OptionTable opts(argv[0], "Write a Hugging Face model folder with random weights (normal, std "
                            "initializer_range) from a config.json, optionally with a tokenizer.");
  opts.optional("", "model-config", "config.json of a LlamaForCausalLM (vocab_size may come from --tokenizer)",
                config_path);
  opts.optional("", "output", "folder to write (new or empty unless --force)", out);
  opts.optional("", "tokenizer", "SentencePiece .model to ship as tokenizer.model", tokenizer_file);
  opts.value("", "chat-template", "chat template written into tokenizer_config.json (chatml, llama2, alpaca)",
             chat_template);
  opts.check([&] { data::validate_chat_template(chat_template, "--chat-template"); });
  opts.value("", "dtype", "bf16, fp16 or fp32", dtype_name);
  opts.value("", "seed", "seed of the random weights", seed);
  opts.flag("", "force", "replace a non-empty output folder", force);
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!config_path.empty(), argv[0], "model-config");
  require(!out.empty(), argv[0], "output");
  nlohmann::ordered_json cj = io::read_ordered_json_file(config_path, "--model-config");
  HYFT_CHECK(cj.is_object(), config_path, ": must be a JSON object of config.json keys");
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (!tokenizer_file.empty()) {
    HYFT_CHECK(!ends_with(tokenizer_file, ".json"), "--tokenizer ", tokenizer_file, ": model init ships a "
               "SentencePiece .model; for a tokenizer.json, init without --tokenizer (give vocab_size in the "
               "config) and copy tokenizer.json and tokenizer_config.json into the folder");
    tok = std::make_unique<tokenizer::Tokenizer>(tokenizer_file);
    if (!cj.contains("vocab_size")) cj["vocab_size"] = tok->vocab_size();
    HYFT_CHECK(cj["vocab_size"].get<int64_t>() >= tok->vocab_size(), config_path, ": vocab_size ", cj["vocab_size"],
               " is smaller than the tokenizer's ", tok->vocab_size());
    if (tok->bos_id() && !cj.contains("bos_token_id")) cj["bos_token_id"] = *tok->bos_id();
    if (tok->eos_id() && !cj.contains("eos_token_id")) cj["eos_token_id"] = *tok->eos_id();
  }
  if (!cj.contains("architectures")) cj["architectures"] = {"LlamaForCausalLM"};
  if (!cj.contains("model_type")) cj["model_type"] = "llama";
  const model::LlamaConfig config = model::parse_llama_config(nlohmann::json::parse(cj.dump()), config_path);

  at::manual_seed(seed);
  model::LlamaForCausalLM model(config, at::TensorOptions().dtype(at::kFloat));
  model::init_random_weights(*model, cj.value("initializer_range", 0.02));
  const at::ScalarType dtype = parse_precision(dtype_name, "--dtype");
  std::map<std::string, at::Tensor> params;
  std::vector<io::TensorSpec> specs;
  for (const auto& p : model->named_parameters()) {
    params[p.key()] = p.value();
    specs.push_back({p.key(), p.value().numel() * int64_t(c10::elementSize(dtype))});
  }
  io::ModelFolderOptions folder;
  folder.config = cj;
  folder.dtype = dtype;
  folder.replace = force;
  if (tok) {  // the tokenizer and the files that make transformers read it as hyft does
    folder.files = recipes::hf_tokenizer_files(*tok, chat_template, cj);
    std::ifstream in(tok->path(), std::ios::binary);
    folder.files["tokenizer.model"] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  io::write_model_folder(out, specs, folder, [&](const std::string& key) { return params.at(key).detach().to(dtype); });
  int64_t n = 0;
  for (const auto& [k, v] : params) n += v.numel();
  std::printf("wrote %s: %lld parameters, %s\n", out.c_str(), static_cast<long long>(n), precision_name(dtype));
  return 0;
}

}  // namespace

int model_command(int argc, char** argv) {
  return run_verb(argc, argv, "init", "hyft model init --model-config FILE.json --output DIR [--tokenizer FILE.model]", model_init);
}

}  // namespace hyft::app
