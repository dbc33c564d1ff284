// hyft generate: text from a model (and adapter) with a KV cache (recipes/generate.h).
#include "commands.h"

#include "recipes/generate.h"
#include "shared_options.h"

namespace hyft::app {

int generate_command(int argc, char** argv) {
  recipes::GenerateOptions o;
  auto& s = o.settings;
  OptionTable opts(argv[0], "Generate text with a KV cache. --prompt prints the completion alone; --input "
                            "FILE.jsonl writes one JSON line per record.");
  add_tokenizer_option(opts, o.model, "");
  opts.optional("", "prompt", "prompt text (used as it is, after BOS; with --chat-template, as a user message)",
                o.prompt);
  opts.optional("", "input", "JSONL of prompts: prompt, instruction[/input], messages or text records", o.input_file);
  opts.optional("", "output", "where --input results go (default: stdout)", o.output_file);
  opts.flag("", "force", "replace an existing --output file", o.force);
  opts.optional("", "log", "append every prompt and output to this JSONL (audit trail)", o.log_file);
  opts.value("", "max-new-tokens", "tokens to generate at most", s.max_new_tokens);
  opts.value("", "temperature", "sampling temperature; 0 = greedy", s.sampling.temperature);
  opts.value("", "top-p", "nucleus sampling mass (1 = off)", s.sampling.top_p);
  opts.value("", "top-k", "keep the k most likely tokens (0 = off)", s.sampling.top_k);
  opts.value("", "repetition-penalty", "penalty on tokens already seen (1 = off)", s.sampling.repetition_penalty);
  opts.value("", "seed", "sampling seed", s.seed);
  add_record_options(opts, o.records, "");
  add_model_options(opts, o.model, /*with_adapter=*/true);
  if (!parse_or_help(opts, argc, argv)) return 0;
  o.prompt_as_user = opts.given("chat-template");
  return recipes::run_generate(o);
}

}  // namespace hyft::app
