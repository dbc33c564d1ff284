// A cache of tokenized datasets : the
// examples and counts of load_dataset, stored in one binary file per (input file,
// its size and modification time, tokenizer, settings). A stale or damaged entry
// is never used: the key changes with any input, and a file that fails its checks
// is rebuilt.
#pragma once

#include "data/dataset.h"

#include <optional>
#include <string>

namespace hyft::data {

// The cache file for these inputs under `cache_dir`.
std::string dataset_cache_path(const std::string& cache_dir, const std::string& data_path,
                               const tokenizer::Tokenizer* tok, int64_t vocab_size, const DatasetOptions& options);

std::optional<Dataset> read_dataset_cache(const std::string& path);
void write_dataset_cache(const std::string& path, const Dataset& dataset);

}  // namespace hyft::data
