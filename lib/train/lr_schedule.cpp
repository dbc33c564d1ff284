#include "train/lr_schedule.h"

#include "common/error.h"

#include <algorithm>
#include <cmath>

namespace hyft::train {

Schedule parse_schedule(const std::string& text, const std::string& flag) {
  if (text == "constant") return Schedule::Constant;
  if (text == "linear") return Schedule::Linear;
  if (text == "cosine") return Schedule::Cosine;
  fail(flag, ": '", text, "' is not a schedule; use constant, linear or cosine");
}

const char* schedule_name(Schedule schedule) {
  switch (schedule) {
    case Schedule::Constant: return "constant";
    case Schedule::Linear: return "linear";
    case Schedule::Cosine: return "cosine";
  }
  return "?";
}

double learning_rate(Schedule schedule, double peak_lr, int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return peak_lr * double(step) / double(std::max<int64_t>(1, warmup));
  if (schedule == Schedule::Constant) return peak_lr;
  const double progress = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  if (schedule == Schedule::Linear) return peak_lr * std::max(0.0, 1.0 - progress);
  return peak_lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace hyft::train
