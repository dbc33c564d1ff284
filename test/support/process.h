// Helpers for tests that run programs: hyft itself and the reference Python.
#pragma once

#include <string>

namespace hyft::test {

struct ProcessResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs `command` through the shell, capturing stdout and stderr.
ProcessResult run(const std::string& command);

// `HYFT_BIN args`, `HYFT_PYTHON args`.
ProcessResult run_hyft(const std::string& args);
ProcessResult run_python(const std::string& args);

// A fresh empty folder under build/test-fixtures/tmp, named after `name` and the pid.
std::string temp_dir(const std::string& name);

// Single-quotes `s` for the shell.
std::string quote(const std::string& s);

std::string read_text(const std::string& path);

}  // namespace hyft::test
