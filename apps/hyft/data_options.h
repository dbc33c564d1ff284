// The dataset options shared by eval, finetune and data stats: one table, one
// reading, so every command spells and checks them the same way.
#pragma once

#include "data/dataset.h"
#include "tokenizer/tokenizer.h"

#include <cxxopts.hpp>

#include <memory>
#include <string>

namespace hyft::app {

// --chat-template and --label-field: how records render (part of the data options).
void add_record_options(cxxopts::Options& opts, const std::string& group = "data");
data::RecordOptions record_options_from(const cxxopts::ParseResult& args);

void add_data_options(cxxopts::Options& opts);
data::DatasetOptions data_options_from(const cxxopts::ParseResult& args);

// The tokenizer from --tokenizer, else the model folder's tokenizer.model, else
// null (fine for pre-tokenized data; text records then fail with a clear error).
std::unique_ptr<tokenizer::Tokenizer> optional_tokenizer(const cxxopts::ParseResult& args,
                                                         const std::string& model_dir);

}  // namespace hyft::app
