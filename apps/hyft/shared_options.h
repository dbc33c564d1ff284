// The option groups several commands share, each bound to the struct that holds
// it: the model (--model, --device, --precision, the hybrid attention flags,
// --adapter, --tokenizer), how records render (--chat-template, --label-field)
// and how a dataset is tokenized (--max-seq-len, --overlength, ...). One table,
// so every command spells, defaults and checks them the same way.
#pragma once

#include "data/dataset.h"
#include "option_table.h"
#include "recipes/model_setup.h"

namespace hyft::app {

void add_model_options(OptionTable& t, recipes::ModelOptions& o, bool with_adapter);
void add_tokenizer_option(OptionTable& t, recipes::ModelOptions& o, const std::string& group);
void add_record_options(OptionTable& t, data::RecordOptions& o, const std::string& group);
// The record options and the tokenization settings (not the tokenizer itself).
void add_data_options(OptionTable& t, data::DatasetOptions& o);

}  // namespace hyft::app
