// Mixed precision: an RAII guard for LibTorch's thread-local autocast
// state, which has no guard of its own in C++. It restores the previous state and
// clears the cast cache when the outermost region ends.
#pragma once

#include <ATen/autocast_mode.h>

namespace hyft::train {

class AutocastGuard {
 public:
  // dtype kFloat (or enabled = false) leaves autocast off.
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled = true)
      : device_(device),
        was_enabled_(at::autocast::is_autocast_enabled(device)),
        was_dtype_(at::autocast::get_autocast_dtype(device)) {
    const bool on = enabled && dtype != c10::kFloat;
    at::autocast::set_autocast_enabled(device_, on);
    if (on) at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, was_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool was_enabled_;
  c10::ScalarType was_dtype_;
};

}  // namespace hyft::train
