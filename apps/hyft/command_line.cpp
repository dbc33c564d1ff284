// Option parsing shared by every subcommand: --help, --config FILE.yaml (keys are
// the long options in snake_case; the command line wins), aliases, and errors for
// unknown options or keys that suggest the closest name.
#include "commands.h"

#include "common/error.h"
#include "common/strings.h"

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

// The option a spelling names: itself, or what it is an alias of.
std::string canonical(const std::string& name, const OptionTable& table) {
  const auto it = table.aliases().find(name);
  return it == table.aliases().end() ? name : it->second;
}

bool is_switch(const cxxopts::Options& options, const std::string& name) {
  for (const auto& group : options.groups())
    for (const auto& o : options.group_help(group).options)
      if (std::find(o.l.begin(), o.l.end(), name) != o.l.end()) return o.is_boolean;
  return false;
}

// What `--alias VALUE` stands for, or a UserError listing the values it takes.
std::string value_alias(const std::string& alias, const std::string& value,
                        const std::map<std::string, std::string>& replacements) {
  const auto it = replacements.find(value);
  if (it != replacements.end()) return it->second;
  std::string allowed;
  for (const auto& kv : replacements) allowed += (allowed.empty() ? "" : ", ") + kv.first;
  fail("--", alias, ": '", value, "' is not one of ", allowed);
}

// The option an argument "--name" or "--name=value" names.
std::string option_name(const std::string& arg) {
  const size_t eq = arg.find('=');
  return arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
}

// The command line with aliases replaced by the names they stand for.
std::vector<std::string> canonical_arguments(const std::vector<std::string>& in, const OptionTable& table) {
  std::vector<std::string> out;
  for (size_t i = 0; i < in.size(); ++i) {
    std::string a = in[i];
    if (starts_with(a, "--") && a.size() > 2) {
      const size_t eq = a.find('=');
      const std::string name = option_name(a);
      const auto va = table.value_aliases().find(name);
      if (va != table.value_aliases().end()) {
        HYFT_CHECK(eq != std::string::npos || i + 1 < in.size(), "--", name, " needs a value");
        const std::string value = eq != std::string::npos ? a.substr(eq + 1) : in[++i];
        const std::string replacement = value_alias(name, value, va->second);
        if (!replacement.empty()) out.push_back(replacement);
        continue;
      }
      a = "--" + canonical(name, table) + (eq == std::string::npos ? "" : a.substr(eq));
      // --resume PATH: an option whose value may be left out takes the next
      // argument when that is not an option itself.
      if (eq == std::string::npos && table.optional_values().count(a.substr(2)) && i + 1 < in.size() &&
          !starts_with(in[i + 1], "-"))
        a += "=" + in[++i];
    }
    out.push_back(a);
  }
  return out;
}

bool on_command_line(const std::vector<std::string>& args, const std::string& name) {
  const std::string flag = "--" + name;
  for (const auto& a : args)
    if (a == flag || starts_with(a, flag + "=")) return true;
  return false;
}

// The options a YAML file gives, as "--name=value", each with where it came from
// ("FILE:LINE: key 'k'"), for errors.
std::vector<std::pair<std::string, std::string>> config_arguments(const std::string& path, OptionTable& table,
                                                                  const std::vector<std::string>& command_line) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail(path, ": cannot read the --config file");
  } catch (const YAML::ParserException& e) {
    fail(path, ":", e.mark.line + 1, ": not valid YAML (", e.msg, ")");
  } catch (const YAML::Exception& e) {
    fail(path, ":", e.mark.line + 1, ": not valid YAML (", e.msg, ")");
  }
  HYFT_CHECK(root.IsMap(), path, ": must be a map of option: value");
  const cxxopts::Options& options = table.options();
  const auto known = long_names(options);
  std::set<std::string> known_snake;
  for (const auto& k : known) known_snake.insert(snake(k));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : root) {
    const int line = kv.first.Mark().line + 1;
    HYFT_CHECK(kv.first.IsScalar(), path, ":", line, ": a key must be a plain name (option: value)");
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    std::string value;
    if (v.IsSequence()) {
      for (size_t i = 0; i < v.size(); ++i) {
        HYFT_CHECK(v[i].IsScalar(), path, ":", v[i].Mark().line + 1, ": '", key,
                   "' must list plain values (no nested lists or maps)");
        value += (i ? "," : "") + v[i].Scalar();
      }
    } else if (v.IsScalar()) {
      value = v.Scalar();
    } else {
      fail(path, ":", line, ": '", key, "' must be a value or a list");
    }
    const auto va = table.value_aliases().find(kebab(key));
    if (va != table.value_aliases().end()) {  // an old spelling standing for other options
      try {
        const std::string replacement = value_alias(kebab(key), value, va->second);
        if (!replacement.empty()) out.emplace_back(replacement, "");
      } catch (const UserError& e) {
        fail(path, ":", line, ": ", e.what());
      }
      continue;
    }
    const std::string name = canonical(kebab(key), table);
    HYFT_CHECK(known.count(name) && name != "config" && name != "help", path, ":", line, ": unknown key '", key,
               "'", suggestion(key, known_snake, ""));
    if (on_command_line(command_line, name)) continue;  // the command line wins
    if (is_switch(options, name))
      HYFT_CHECK(value == "true" || value == "false", path, ":", line, ": '", key, "' is a switch: true or false");
    out.emplace_back("--" + name + "=" + value, path + ":" + std::to_string(line) + ": key '" + key + "'");
  }
  return out;
}

// Values of the wrong type, found before cxxopts sees them so that the error names
// the option (and the YAML key it came from).
void check_option_values(const std::vector<std::string>& args, const std::vector<std::string>& origins,
                         const OptionTable& table) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (!starts_with(args[i], "--")) continue;
    const size_t eq = args[i].find('=');
    const std::string name = option_name(args[i]);
    const ValueKind kind = table.kind_of(name);
    if (kind == ValueKind::Text) continue;
    if (eq == std::string::npos && i + 1 >= args.size()) fail("--", name, " needs a value");
    const std::string value = eq != std::string::npos ? args[i].substr(eq + 1) : args[i + 1];
    const std::string problem = value_problem(value, kind);
    if (!problem.empty())
      fail(origins[i].empty() ? "" : origins[i] + ": ", "--", name, ": '", value, "' is not ", problem);
  }
}

// Unknown --names, found before cxxopts sees them, with the closest known name.
void check_option_names(const std::vector<std::string>& args, const cxxopts::Options& options) {
  const auto known = long_names(options);
  for (const auto& a : args) {
    if (!starts_with(a, "--") || a.size() == 2) continue;
    const std::string name = option_name(a);
    if (!known.count(name))
      fail("unknown option --", name, suggestion(name, known, "--"), " (see '", options.program(), " --help')");
  }
}

// The arguments as cxxopts should see them. cxxopts matches each argument it reads as
// an option against a std::regex, whose matching recurses once per character: a long
// "--name=value" (a 40 KB value from a --config file, found by the fuzzer) overflowed
// the stack. So an option that always takes a value gets it as the next argument,
// which cxxopts takes as it is, unmatched; what it still matches is kept short.
std::vector<std::string> cxxopts_arguments(const std::vector<std::string>& args,
                                           const std::vector<std::string>& origins, OptionTable& table) {
  constexpr size_t kLongest = 4096;  // a path's longest
  const cxxopts::Options& options = table.options();
  auto takes_value = [&](const std::string& name) {
    return !is_switch(options, name) && !table.optional_values().count(name);
  };
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (starts_with(a, "--") && a.size() > 2) {
      const size_t eq = a.find('=');
      const std::string name = option_name(a);
      if (takes_value(name)) {
        out.push_back("--" + name);
        if (eq != std::string::npos) out.push_back(a.substr(eq + 1));
        else if (i + 1 < args.size()) out.push_back(args[++i]);  // its value, whatever it starts with
        continue;
      }
    }
    if (a.size() > kLongest) {
      const size_t eq = a.find('=');
      fail(origins[i].empty() ? "" : origins[i] + ": ", "an argument of ", a.size(), " characters ('",
           a.substr(0, std::min<size_t>(eq == std::string::npos ? 40 : eq + 1, 40)), "...'): switches and ",
           "paths take at most ", kLongest);
    }
    out.push_back(a);
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

bool parse_or_help(OptionTable& table, int argc, char** argv) {
  cxxopts::Options& options = table.options();
  options.add_options()("config", "YAML file of options, keys in snake_case (the command line wins)",
                        cxxopts::value<std::string>())("h,help", "print this help");
  const std::vector<std::string> command_line =
      canonical_arguments(std::vector<std::string>(argv + 1, argv + argc), table);
  // --config: its options go first, so anything on the command line overrides them.
  std::vector<std::string> args, origins;
  for (size_t i = 0; i < command_line.size(); ++i) {
    const std::string& a = command_line[i];
    std::string path;
    if (a == "--config" && i + 1 < command_line.size()) path = command_line[i + 1];
    else if (starts_with(a, "--config=")) path = a.substr(9);
    if (!path.empty())
      for (const auto& [arg, origin] : config_arguments(path, table, command_line)) {
        args.push_back(arg);
        origins.push_back(origin);
      }
  }
  args.insert(args.end(), command_line.begin(), command_line.end());
  origins.resize(args.size());
  check_option_names(args, options);
  check_option_values(args, origins, table);
  args = cxxopts_arguments(args, origins, table);
  args.insert(args.begin(), argv[0]);
  std::vector<char*> ptrs;
  for (auto& a : args) ptrs.push_back(a.data());
  cxxopts::ParseResult out;
  try {
    out = options.parse(int(ptrs.size()), ptrs.data());
  } catch (const cxxopts::exceptions::exception& e) {
    fail(e.what(), "; see '", options.program(), " --help'");
  }
  if (out.count("help")) {
    std::cout << options.help() << std::endl;
    return false;
  }
  if (!out.unmatched().empty())
    fail("unexpected argument '", out.unmatched().front(), "'; see '", options.program(), " --help'");
  table.apply(out);
  return true;
}

void require(bool present, const char* program, const char* flag) {
  HYFT_CHECK(present, program, ": --", flag, " is required; see '", program, " --help'");
}

}  // namespace hyft::app
