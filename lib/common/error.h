// User-facing errors of hyft, kept apart from internal asserts (TORCH_INTERNAL_ASSERT).
// A UserError is bad input or bad usage: the program prints its message and exits 2.
// Messages name the file, line, key or flag at fault and say what to do next.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace hyft {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw UserError(detail::concat(std::forward<Args>(args)...));
}

}  // namespace hyft

// HYFT_CHECK(cond, parts...): a UserError built from the parts when cond is false.
#define HYFT_CHECK(cond, ...)         \
  do {                                \
    if (!(cond)) ::hyft::fail(__VA_ARGS__); \
  } while (0)
