// Run-time choices shared by every command: the compute dtype (--precision) and
// the device (--device auto|cpu|cuda|cuda:N), parsed with errors naming the flag.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace hyft {

// "fp32" | "bf16" | "fp16" -> dtype.
c10::ScalarType parse_precision(const std::string& text, const char* flag = "--precision");
const char* precision_name(c10::ScalarType dtype);

// "auto" picks cuda:0 when a GPU is there, else cpu.
c10::Device parse_device(const std::string& text, const char* flag = "--device");

// Whether the environment variable `name` is "0": the HYFT_* switches that turn a
// fast path off for comparing or bisecting (HYFT_FUSED_KERNELS=0 and the like).
bool switched_off(const char* name);

}  // namespace hyft
