// Model names as Hugging Face writes them ("deepseek-ai/deepseek-coder-1.3b-base")
// resolved to a snapshot folder of the local Hugging Face cache, as transformers
// finds them offline. hyft never downloads.
#pragma once

#include <string>

namespace hyft::io {

// `name` itself when it is a folder; else, for an "org/model" id, its snapshot in
// the cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub):
// the revision refs/main names, or the only (else newest) snapshot. Anything else
// is a UserError that names the places looked in and how to fetch the model.
// `flag` names the option in the error.
std::string resolve_model_dir(const std::string& name, const std::string& flag);

}  // namespace hyft::io
