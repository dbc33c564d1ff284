// hyft model init: a new model folder with random weights from a config.json,
// for experiments and the demo (nothing to download).
#include "commands.h"

#include "common/error.h"
#include "common/runtime.h"
#include "io/model_folder_writer.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace hyft::app {

namespace {

int model_init(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Write a Hugging Face model folder with random weights (normal, std "
                                 "initializer_range) from a config.json, optionally with a tokenizer.");
  opts.add_options()
      ("model-config", "config.json of a LlamaForCausalLM (vocab_size may come from --tokenizer)",
       cxxopts::value<std::string>())
      ("output", "folder to write (new or empty unless --force)", cxxopts::value<std::string>())
      ("tokenizer", "SentencePiece .model to ship as tokenizer.model", cxxopts::value<std::string>())
      ("dtype", "bf16, fp16 or fp32", cxxopts::value<std::string>()->default_value("fp32"))
      ("seed", "seed of the random weights", cxxopts::value<uint64_t>()->default_value("0"))
      ("force", "replace a non-empty output folder");
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  for (const char* required : {"model-config", "output"})
    HYFT_CHECK(args.count(required), "hyft model init: --", required, " is required");
  const std::string config_path = args["model-config"].as<std::string>();
  std::ifstream in(config_path);
  HYFT_CHECK(in, config_path, ": cannot open");
  nlohmann::ordered_json cj;
  try {
    cj = nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(config_path, ": not valid JSON (", e.what(), ")");
  }
  std::unique_ptr<tokenizer::Tokenizer> tok;
  if (args.count("tokenizer")) {
    tok = std::make_unique<tokenizer::Tokenizer>(args["tokenizer"].as<std::string>());
    if (!cj.contains("vocab_size")) cj["vocab_size"] = tok->vocab_size();
    HYFT_CHECK(cj["vocab_size"].get<int64_t>() >= tok->vocab_size(), config_path, ": vocab_size ", cj["vocab_size"],
               " is smaller than the tokenizer's ", tok->vocab_size());
    if (tok->bos_id() && !cj.contains("bos_token_id")) cj["bos_token_id"] = *tok->bos_id();
    if (tok->eos_id() && !cj.contains("eos_token_id")) cj["eos_token_id"] = *tok->eos_id();
  }
  if (!cj.contains("architectures")) cj["architectures"] = {"LlamaForCausalLM"};
  if (!cj.contains("model_type")) cj["model_type"] = "llama";
  const model::LlamaConfig config = model::parse_llama_config(nlohmann::json::parse(cj.dump()), config_path);

  at::manual_seed(args["seed"].as<uint64_t>());
  model::LlamaForCausalLM model(config, at::TensorOptions().dtype(at::kFloat));
  model::init_random_weights(*model, cj.value("initializer_range", 0.02));
  const at::ScalarType dtype = parse_precision(args["dtype"].as<std::string>(), "--dtype");
  std::map<std::string, at::Tensor> params;
  std::vector<io::TensorSpec> specs;
  for (const auto& p : model->named_parameters()) {
    params[p.key()] = p.value();
    specs.push_back({p.key(), p.value().numel() * int64_t(c10::elementSize(dtype))});
  }
  io::ModelFolderOptions folder;
  folder.config = cj;
  folder.dtype = dtype;
  folder.replace = args.count("force") > 0;
  const std::string out = args["output"].as<std::string>();
  io::write_model_folder(out, specs, folder, [&](const std::string& key) { return params.at(key).detach().to(dtype); });
  if (tok) std::filesystem::copy_file(tok->path(), out + "/tokenizer.model");
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
