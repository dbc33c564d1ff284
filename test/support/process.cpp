#include "support/process.h"

#include "io/remove_tree.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hyft::test {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(HYFT_FIXTURES) / "tmp" / (name + "-" + std::to_string(::getpid()));
  io::remove_tree(dir.string());
  fs::create_directories(dir);
  return dir.string();
}

ProcessResult run(const std::string& command) {
  const std::string dir = temp_dir("run");
  const std::string out = dir + "/out", err = dir + "/err";
  const int status = std::system((command + " >" + quote(out) + " 2>" + quote(err)).c_str());
  ProcessResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  io::remove_tree(dir);
  return r;
}

ProcessResult run_hyft(const std::string& args) { return run(quote(HYFT_BIN) + " " + args); }
ProcessResult run_python(const std::string& args) { return run(quote(HYFT_PYTHON) + " " + args); }

}  // namespace hyft::test
