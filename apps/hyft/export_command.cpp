// hyft export: base model + LoRA adapter -> merged Hugging Face model folder.
#include "commands.h"

#include "adapters/export.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/runtime.h"
#include "io/sharded_writer.h"

#include <cstdio>

namespace hyft::app {

int export_command(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Merge a LoRA adapter into its base model (W + scaling * B A, in fp32) and "
                                 "write a Hugging Face model folder that transformers loads.");
  opts.add_options()
      ("model", "base Hugging Face model folder", cxxopts::value<std::string>())
      ("adapter", "PEFT LoRA adapter folder", cxxopts::value<std::string>())
      ("output", "folder to write (must be new or empty unless --force)", cxxopts::value<std::string>())
      ("dtype", "bf16, fp16 or fp32 (default: the base config's torch_dtype)", cxxopts::value<std::string>())
      ("shard-size", "largest safetensors file before sharding (5GB, 500MB, 2GiB, ...)",
       cxxopts::value<std::string>()->default_value("5GB"))
      ("force", "replace a non-empty output folder");
  cxxopts::ParseResult args;
  if (!parse_or_help(opts, argc, argv, args)) return 0;
  for (const char* required : {"model", "adapter", "output"})
    HYFT_CHECK(args.count(required), "hyft export: --", required, " is required; see 'hyft export --help'");

  adapters::ExportOptions options;
  if (args.count("dtype")) options.dtype = parse_precision(args["dtype"].as<std::string>(), "--dtype");
  options.shard_bytes = io::parse_byte_size(args["shard-size"].as<std::string>(), "--shard-size");
  options.force = args.count("force") > 0;
  options.progress = Progress::stderr_is_terminal();

  const std::string adapter_dir = args["adapter"].as<std::string>();
  const auto adapter = adapters::read_peft_adapter(adapter_dir);
  const std::string out = args["output"].as<std::string>();
  const auto s = adapters::export_merged(args["model"].as<std::string>(), adapter, out, options);
  std::printf("wrote %s: %lld tensors (%lld merged with the adapter), %s, %.1f MB in %lld file(s)\n", out.c_str(),
              static_cast<long long>(s.tensors), static_cast<long long>(s.merged), precision_name(s.dtype),
              double(s.bytes) / 1e6, static_cast<long long>(s.shards));
  return 0;
}

}  // namespace hyft::app
