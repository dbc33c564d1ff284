// The table of hyft's subcommands and the helpers they share: each subcommand is a
// thin function that reads its options into a recipe's (or a library's) options
// struct, runs it, prints the result and returns the process exit code.
#pragma once

#include "option_table.h"

#include <string>

namespace hyft::app {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is "hyft <name>"
};

int finetune_command(int argc, char** argv);
int eval_command(int argc, char** argv);
int export_command(int argc, char** argv);
int data_command(int argc, char** argv);
int bench_command(int argc, char** argv);
int generate_command(int argc, char** argv);
int serve_command(int argc, char** argv);
int model_command(int argc, char** argv);
int doctor_command(int argc, char** argv);
int tokenizer_command(int argc, char** argv);

// For commands with one verb ("data stats"): checks argv[1] is `verb` and runs
// `run` on the rest, or prints `usage` (exit 0 for --help, 2 otherwise).
int run_verb(int argc, char** argv, const char* verb, const char* usage, int (*run)(int, char**));

// Parses argv (aliases resolved, --config FILE.yaml read first) into the table's
// fields and runs its checks; --help prints the help and returns false. Unknown
// options and bad values become UserErrors that point at --help.
bool parse_or_help(OptionTable& table, int argc, char** argv);

// A UserError unless `value` is set: "hyft <command>: --<flag> is required".
void require(bool present, const char* program, const char* flag);

}  // namespace hyft::app
