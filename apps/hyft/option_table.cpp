#include "option_table.h"

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
