// Learning-rate schedules: constant, linear and cosine, each with a
// linear warmup from 0, as transformers' get_*_schedule_with_warmup define them.
#pragma once

#include <cstdint>
#include <string>

namespace hyft::train {

enum class Schedule { Constant, Linear, Cosine };
Schedule parse_schedule(const std::string& text, const std::string& flag);
const char* schedule_name(Schedule schedule);  // "constant", "linear", "cosine"

// The learning rate of optimizer step `step` (0-based) out of `total_steps`.
double learning_rate(Schedule schedule, double peak_lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

}  // namespace hyft::train
