// hyft: LoRA fine-tuning of Llama-architecture models on LibTorch.
// Dispatches to a subcommand and turns errors into exit codes: 2 for bad usage or
// bad input (hyft::UserError), 1 for a failure while running.
#include "commands.h"

#include "common/error.h"
#include "common/interrupt.h"

#include <c10/util/Exception.h>

#include <cstring>
#include <iostream>

namespace {

const hyft::app::Command kCommands[] = {
    {"finetune", "fine-tune a model with LoRA (or fully) on a JSONL dataset", hyft::app::finetune_command},
    {"eval", "held-out loss and perplexity of a model (and adapter) on a JSONL dataset", hyft::app::eval_command},
    {"export", "merge a LoRA adapter into its base and write a Hugging Face model folder",
     hyft::app::export_command},
    {"generate", "generate text with a KV cache (temperature, top-p, top-k, repetition penalty)",
     hyft::app::generate_command},
    {"serve", "serve a model over HTTP, OpenAI-style (completions, chat, streaming, metrics)",
     hyft::app::serve_command},
    {"doctor", "LibTorch, CUDA, cuDNN, NCCL versions and the GPUs", hyft::app::doctor_command},
    {"bench", "training throughput on random tokens for a named model shape (JSON line)", hyft::app::bench_command},
    {"data", "data stats (what a dataset holds) and data render (records as template segments)",
     hyft::app::data_command},
    {"model", "model init: a new model folder with random weights from a config.json", hyft::app::model_command},
    {"tokenizer", "tokenizer train: a SentencePiece model from a corpus", hyft::app::tokenizer_command},
};

void print_usage() {
  std::cout << "hyft: LoRA fine-tuning of Llama-architecture models\n\n"
               "usage: hyft <command> [options]   (hyft <command> --help for its options)\n\n"
               "commands:\n";
  for (const auto& c : kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
}

}  // namespace


int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    std::string program = std::string("hyft ") + c.name;  // argv[0] of the subcommand
    argv[1] = program.data();
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const hyft::Interrupted& e) {
      std::cerr << e.what() << std::endl;
      return 128 + e.signal;
    } catch (const hyft::UserError& e) {
      std::cerr << "error: " << e.what() << std::endl;
      return 2;
    } catch (const c10::Error& e) {
      std::cerr << "error: " << e.what_without_backtrace() << std::endl;
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << std::endl;
      return 1;
    }
  }
  std::cerr << "error: unknown command '" << argv[1] << "'; run 'hyft --help' for the list" << std::endl;
  return 2;
}
