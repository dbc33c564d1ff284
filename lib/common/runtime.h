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

}  // namespace hyft
