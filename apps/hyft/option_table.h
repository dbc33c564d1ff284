// One table of options per command, bound to the fields of the options structs
// the libraries and recipes take: the help text shows each field's own default
// (the struct initialiser is the only place a default is written), parsing writes
// the fields, and aliases map older or Hugging Face-style spellings to hyft's.
//
//   recipes::FinetuneOptions o;
//   OptionTable t(argv[0], "Fine-tune ...");
//   t.value("lora", "lora-r", "LoRA rank", o.lora.r);
//   t.alias("rank", "lora-r");
//   if (!parse_or_help(t, argc, argv)) return 0;   // o is filled in
#pragma once

#include <cxxopts.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace hyft::app {

// The shortest text that reads back as `v` ("0.0002", "1e-08", "32").
std::string format_default(double v);
inline std::string format_default(int64_t v) { return std::to_string(v); }
inline std::string format_default(uint64_t v) { return std::to_string(v); }
inline std::string format_default(int v) { return std::to_string(v); }
inline std::string format_default(const std::string& v) { return v; }

// What text an option's value must be, checked before parsing so that the error
// names the option: a whole number, a whole number >= 0, a decimal, or anything.
enum class ValueKind { Text, Integer, Unsigned, Decimal };
template <typename T>
constexpr ValueKind value_kind() {
  if constexpr (std::is_same_v<T, double>) return ValueKind::Decimal;
  else if constexpr (std::is_same_v<T, uint64_t>) return ValueKind::Unsigned;
  else if constexpr (std::is_integral_v<T>) return ValueKind::Integer;
  else return ValueKind::Text;
}
// "" when `text` is a valid `kind`, else what it should be ("a whole number").
std::string value_problem(const std::string& text, ValueKind kind);

class OptionTable {
 public:
  OptionTable(const std::string& program, const std::string& description) : options_(program, description) {}

  // --name VALUE, defaulting to the field's current value.
  template <typename T>
  void value(const std::string& group, const std::string& name, const std::string& help, T& field) {
    options_.add_options(group)(name, help, cxxopts::value<T>()->default_value(format_default(field)));
    readers_.push_back([name, &field](const cxxopts::ParseResult& r) { field = r[name].as<T>(); });
    kinds_[name] = value_kind<T>();
  }
  // --name VALUE with no default: the field keeps its value unless given
  // (`help` says what happens then).
  template <typename T>
  void optional(const std::string& group, const std::string& name, const std::string& help, T& field) {
    options_.add_options(group)(name, help, cxxopts::value<T>());
    readers_.push_back([name, &field](const cxxopts::ParseResult& r) {
      if (r.count(name)) field = r[name].template as<T>();
    });
    kinds_[name] = value_kind<T>();
  }
  template <typename T>
  void optional(const std::string& group, const std::string& name, const std::string& help,
                std::optional<T>& field) {
    options_.add_options(group)(name, help, cxxopts::value<T>());
    readers_.push_back([name, &field](const cxxopts::ParseResult& r) {
      if (r.count(name)) field = r[name].template as<T>();
    });
    kinds_[name] = value_kind<T>();
  }
  // --name [VALUE]: `implicit` when given alone, the value when given with =.
  void optional_implicit(const std::string& group, const std::string& name, const std::string& help,
                         std::string& field, const std::string& implicit) {
    options_.add_options(group)(name, help, cxxopts::value<std::string>()->implicit_value(implicit));
    readers_.push_back([name, &field](const cxxopts::ParseResult& r) {
      if (r.count(name)) field = r[name].as<std::string>();
    });
    optional_values_.insert(name);
  }
  // Options whose value may follow as the next argument (--resume PATH) or be left out.
  const std::set<std::string>& optional_values() const { return optional_values_; }
  // --name: a switch, true when given (--name=false turns off a default of true).
  void flag(const std::string& group, const std::string& name, const std::string& help, bool& field);
  // --name CHOICE for an enum field: `to_text` names a value (the default shown),
  // `parse` reads one (a UserError naming the flag for an unknown choice). With
  // `implicit`, --name alone means that choice.
  template <typename E>
  void choice(const std::string& group, const std::string& name, const std::string& help, E& field,
              E (*parse)(const std::string& text, const std::string& flag), const char* (*to_text)(E),
              const char* implicit = nullptr) {
    auto value = cxxopts::value<std::string>()->default_value(to_text(field));
    if (implicit) {
      value->implicit_value(implicit);
      optional_values_.insert(name);
    }
    options_.add_options(group)(name, help, value);
    readers_.push_back([name, &field, parse](const cxxopts::ParseResult& r) {
      field = parse(r[name].as<std::string>(), "--" + name);
    });
  }
  // A check run after every field is read (ranges, combinations).
  void check(std::function<void()> f) { checks_.push_back(std::move(f)); }
  // Range checks on a bound field, naming the option: lo <= field (or lo < field
  // with `open`), and field < hi or <= hi. `note` explains a special value.
  template <typename T>
  void at_least(const std::string& name, const T& field, T lo, const std::string& note = "") {
    check([=, &field] {
      if (!(field >= lo)) range_error(name, format_default(field), ">= " + format_default(lo), note);
    });
  }
  template <typename T>
  void above(const std::string& name, const T& field, T lo, const std::string& note = "") {
    check([=, &field] {
      if (!(field > lo)) range_error(name, format_default(field), "> " + format_default(lo), note);
    });
  }
  void within(const std::string& name, const double& field, double lo, double hi, bool hi_inclusive,
              const std::string& note = "");
  // The value kind of --name (Text when it takes no checked value).
  ValueKind kind_of(const std::string& name) const {
    const auto it = kinds_.find(name);
    return it == kinds_.end() ? ValueKind::Text : it->second;
  }
  // --alias means --name (on the command line and as a YAML key).
  void alias(const std::string& alias, const std::string& name) { aliases_[alias] = name; }
  // --alias VALUE stands for other arguments, by value ("" = none): an old
  // spelling whose values map onto switches (--grad-ckpt 0 -> --grad-checkpointing=false).
  void alias_values(const std::string& alias, std::map<std::string, std::string> replacements) {
    value_aliases_[alias] = std::move(replacements);
  }
  const std::map<std::string, std::map<std::string, std::string>>& value_aliases() const { return value_aliases_; }

  cxxopts::Options& options() { return options_; }
  const std::map<std::string, std::string>& aliases() const { return aliases_; }
  // Writes every bound field from `args`, then runs the checks.
  void apply(const cxxopts::ParseResult& args);
  // Whether --name was given (on the command line or in --config), after apply().
  bool given(const std::string& name) const { return given_.count(name) > 0; }

 private:
  cxxopts::Options options_;
  std::vector<std::function<void(const cxxopts::ParseResult&)>> readers_;
  std::vector<std::function<void()>> checks_;
  std::map<std::string, std::string> aliases_;
  std::map<std::string, std::map<std::string, std::string>> value_aliases_;
  std::set<std::string> optional_values_;
  std::set<std::string> given_;
  std::map<std::string, ValueKind> kinds_;
  [[noreturn]] static void range_error(const std::string& name, const std::string& value, const std::string& rule,
                                       const std::string& note);
};

}  // namespace hyft::app
