// Precompiled header shared by every hyft target: the LibTorch and JSON headers
// that nearly every translation unit needs. Sources still include what they use.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>
