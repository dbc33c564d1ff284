#include "common/runtime.h"

#include "common/error.h"

#include <torch/cuda.h>

#include <cstdlib>
#include <cstring>

namespace hyft {

c10::ScalarType parse_precision(const std::string& text, const char* flag) {
  if (text == "fp32" || text == "float32") return c10::kFloat;
  if (text == "bf16" || text == "bfloat16") return c10::kBFloat16;
  if (text == "fp16" || text == "float16") return c10::kHalf;
  fail(flag, ": unknown precision '", text, "'; use fp32, bf16 or fp16");
}

const char* precision_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kBFloat16: return "bf16";
    case c10::kHalf: return "fp16";
    default: return "fp32";
  }
}

c10::Device parse_device(const std::string& text, const char* flag) {
  if (text == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (text == "cpu") return c10::Device(c10::kCPU);
  if (text.rfind("cuda", 0) == 0) {
    HYFT_CHECK(torch::cuda::is_available(), flag, " ", text,
               ": no CUDA GPU is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES), or use --device cpu");
    c10::Device d(c10::kCUDA, 0);
    if (text.size() > 4) {
      HYFT_CHECK(text[4] == ':' && text.size() > 5 && text.find_first_not_of("0123456789", 5) == std::string::npos,
                 flag, ": '", text, "' is not a device; use auto, cpu, cuda or cuda:N");
      const int index = std::stoi(text.substr(5));
      HYFT_CHECK(index < static_cast<int>(torch::cuda::device_count()), flag, " ", text, ": only ",
                 torch::cuda::device_count(), " GPU(s) visible");
      d = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    return d;
  }
  fail(flag, ": '", text, "' is not a device; use auto, cpu, cuda or cuda:N");
}

bool switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "0") == 0;
}

}  // namespace hyft
