// Option parsing shared by every subcommand: --help, --config FILE.yaml (keys are
// the long options in snake_case; the command line wins), and errors for unknown
// options or keys that suggest the closest name.
#include "commands.h"

#include "common/error.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <iostream>
#include <set>

namespace hyft::app {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::set<std::string> long_names(const cxxopts::Options& options) {
  std::set<std::string> names;
  for (const auto& group : options.groups())
    for (const auto& o : options.group_help(group).options)
      for (const auto& n : o.l) names.insert(n);
  return names;
}

// "; did you mean --x?" for the closest known name, or "".
std::string suggestion(const std::string& name, const std::set<std::string>& known, const std::string& prefix) {
  std::string best;
  size_t best_d = std::max<size_t>(3, name.size() / 3) + 1;
  for (const auto& k : known) {
    const size_t d = edit_distance(name, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : "; did you mean " + prefix + best + "?";
}

std::string kebab(std::string s) {
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}
std::string snake(std::string s) {
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

bool on_command_line(int argc, char** argv, const std::string& name) {
  const std::string flag = "--" + name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

// The options a YAML file gives, as "--name=value" (or "--name" for true flags).
std::vector<std::string> config_arguments(const std::string& path, const cxxopts::Options& options, int argc,
                                          char** argv) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    fail(path, ": not a readable YAML file (", e.what(), ")");
  }
  HYFT_CHECK(root.IsMap(), path, ": must be a map of option: value");
  const auto known = long_names(options);
  std::set<std::string> known_snake;
  for (const auto& k : known) known_snake.insert(snake(k));
  std::vector<std::string> out;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const std::string name = kebab(key);
    HYFT_CHECK(known.count(name) && name != "config" && name != "help", path, ":", kv.first.Mark().line + 1,
               ": unknown key '", key, "'", suggestion(key, known_snake, ""));
    if (on_command_line(argc, argv, name)) continue;  // the command line wins
    const YAML::Node& v = kv.second;
    std::string value;
    if (v.IsSequence()) {
      for (size_t i = 0; i < v.size(); ++i) value += (i ? "," : "") + v[i].as<std::string>();
    } else if (v.IsScalar()) {
      value = v.as<std::string>();
    } else {
      fail(path, ":", kv.first.Mark().line + 1, ": '", key, "' must be a value or a list");
    }
    bool is_flag = false;
    for (const auto& group : options.groups())
      for (const auto& o : options.group_help(group).options)
        if (std::find(o.l.begin(), o.l.end(), name) != o.l.end()) is_flag = o.is_boolean;
    if (is_flag) {
      HYFT_CHECK(value == "true" || value == "false", path, ":", kv.first.Mark().line + 1, ": '", key,
                 "' is a switch: true or false");
      if (value == "true") out.push_back("--" + name);
    } else {
      out.push_back("--" + name + "=" + value);
    }
  }
  return out;
}

}  // namespace

int run_verb(int argc, char** argv, const char* verb, const char* usage, int (*run)(int, char**)) {
  if (argc < 2 || std::string(argv[1]) != verb) {
    const bool help = argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h");
    (help ? std::cout : std::cerr) << "usage: " << usage << "\n";
    return help ? 0 : 2;
  }
  std::string program = std::string(argv[0]) + " " + verb;
  argv[1] = program.data();
  return run(argc - 1, argv + 1);
}

bool parse_or_help(cxxopts::Options& options, int argc, char** argv, cxxopts::ParseResult& out) {
  options.add_options()("config", "YAML file of options, keys in snake_case (the command line wins)",
                        cxxopts::value<std::string>())("h,help", "print this help");
  // --config: its options go first, so anything on the command line overrides them.
  std::vector<std::string> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string path;
    if (a == "--config" && i + 1 < argc) path = argv[i + 1];
    else if (a.rfind("--config=", 0) == 0) path = a.substr(9);
    if (!path.empty()) {
      const auto from_file = config_arguments(path, options, argc, argv);
      args.insert(args.begin() + 1, from_file.begin(), from_file.end());
    }
  }
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  std::vector<char*> ptrs;
  for (auto& a : args) ptrs.push_back(a.data());
  try {
    out = options.parse(int(ptrs.size()), ptrs.data());
  } catch (const cxxopts::exceptions::no_such_option& e) {
    std::string what = e.what(), name;
    const auto a = what.find("Option ") + 7;
    const auto b = what.find(" does not exist");
    if (a != std::string::npos && b != std::string::npos && b > a) name = what.substr(a, b - a);
    while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.front()))) name.erase(0, 1);
    while (!name.empty() && !std::isalnum(static_cast<unsigned char>(name.back()))) name.pop_back();
    fail("unknown option --", name, suggestion(name, long_names(options), "--"), " (see '", options.program(),
         " --help')");
  } catch (const cxxopts::exceptions::exception& e) {
    fail(e.what(), "; see '", options.program(), " --help'");
  }
  if (out.count("help")) {
    std::cout << options.help() << std::endl;
    return false;
  }
  if (!out.unmatched().empty())
    fail("unexpected argument '", out.unmatched().front(), "'; see '", options.program(), " --help'");
  return true;
}

}  // namespace hyft::app
