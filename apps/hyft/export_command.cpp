// hyft export: base model + LoRA adapter -> merged Hugging Face model folder
// (recipes/export.h).
#include "commands.h"

#include "common/progress.h"
#include "common/runtime.h"
#include "io/hf_cache.h"
#include "recipes/export.h"

#include <cstdio>

namespace hyft::app {

int export_command(int argc, char** argv) {
  recipes::ExportOptions o;
  OptionTable opts(argv[0], "Merge a LoRA adapter into its base model (W + scaling * B A, in fp32) and "
                            "write a Hugging Face model folder that transformers loads.");
  opts.optional("", "model", "base Hugging Face model folder", o.model_dir);
  opts.optional("", "adapter", "PEFT LoRA adapter folder", o.adapter_dir);
  opts.optional("", "output", "folder to write (must be new or empty unless --force)", o.output_dir);
  opts.optional("", "dtype", "bf16, fp16 or fp32 (default: the base config's torch_dtype)", o.dtype);
  opts.value("", "shard-size", "largest safetensors file before sharding (5GB, 500MB, 2GiB, ...)", o.shard_size);
  opts.flag("", "force", "replace a non-empty output folder", o.force);
  opts.value("", "quantize",
             "the adapter was trained over a quantized base (nf4, int8): merge over the base's quantized weights, "
             "as training saw them (the output is full precision)",
             o.quantize);
  opts.check([&] { o.model_dir = io::resolve_model_dir(o.model_dir, "--model"); });
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!o.model_dir.empty(), argv[0], "model");
  require(!o.adapter_dir.empty(), argv[0], "adapter");
  require(!o.output_dir.empty(), argv[0], "output");
  o.progress = Progress::stderr_is_terminal();
  const auto s = recipes::run_export(o);
  std::printf("wrote %s: %lld tensors (%lld merged with the adapter%s), %s, %.1f MB in %lld file(s)\n",
              o.output_dir.c_str(), static_cast<long long>(s.tensors), static_cast<long long>(s.merged),
              o.quantize == "none" ? "" : (" over the base's " + o.quantize + " weights").c_str(),
              precision_name(s.dtype), double(s.bytes) / 1e6, static_cast<long long>(s.shards));
  return 0;
}

}  // namespace hyft::app
