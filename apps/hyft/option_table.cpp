#include "option_table.h"

#include "common/error.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hyft::app {

std::string format_default(double v) {
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string value_problem(const std::string& text, ValueKind kind) {
  if (kind == ValueKind::Text) return "";
  char* end = nullptr;
  errno = 0;
  if (kind == ValueKind::Decimal) {
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) return "a number (such as 2e-4 or 0.5)";
    return "";
  }
  if (kind == ValueKind::Unsigned && !text.empty() && text[0] == '-') return "a whole number >= 0";
  std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE)
    return kind == ValueKind::Unsigned ? "a whole number >= 0" : "a whole number";
  return "";
}

void OptionTable::range_error(const std::string& name, const std::string& value, const std::string& rule,
                              const std::string& note) {
  throw UserError("--" + name + " must be " + rule + (note.empty() ? "" : " (" + note + ")") + ", got " + value);
}

void OptionTable::within(const std::string& name, const double& field, double lo, double hi, bool hi_inclusive,
                         const std::string& note) {
  check([=, &field] {
    if (!(field >= lo && (hi_inclusive ? field <= hi : field < hi)))
      range_error(name, format_default(field),
                  "in [" + format_default(lo) + ", " + format_default(hi) + (hi_inclusive ? "]" : ")"), note);
  });
}

void OptionTable::flag(const std::string& group, const std::string& name, const std::string& help, bool& field) {
  options_.add_options(group)(
      name, help, cxxopts::value<bool>()->default_value(field ? "true" : "false")->implicit_value("true"));
  readers_.push_back([name, &field](const cxxopts::ParseResult& r) { field = r[name].as<bool>(); });
}

void OptionTable::apply(const cxxopts::ParseResult& args) {
  for (const auto& kv : args.arguments()) given_.insert(kv.key());
  for (const auto& read : readers_) read(args);
  for (const auto& check : checks_) check();
}

}  // namespace hyft::app
