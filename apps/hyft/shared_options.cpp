#include "shared_options.h"

#include "common/error.h"
#include "io/hf_cache.h"
#include "quant/quantized_linear.h"

namespace hyft::app {

void add_model_options(OptionTable& t, recipes::ModelOptions& o, bool with_adapter) {
  t.optional("model", "model",
             "Hugging Face model folder (config.json + safetensors), or a model id (org/name) in the local "
             "Hugging Face cache", o.model_dir);
  t.value("model", "device", "auto, cpu, cuda or cuda:N", o.device);
  t.value("model", "precision", "fp32, bf16 or fp16 (auto: bf16 on GPU, fp32 on CPU)", o.precision);
  t.optional("model", "window-size",
             "hybrid attention window W, 0 = unlimited (default: config.json's sliding_window)", o.window_size);
  t.optional("model", "global-ratio", "share r of global tokens in [0, 1) (default: config.json's global_ratio)",
             o.global_ratio);
  if (with_adapter)
    t.optional("model", "adapter", "PEFT LoRA adapter folder to apply (unmerged)", o.adapter_dir);
  t.value("model", "quantize",
          "keep the frozen base's layer projections quantized: nf4 (4-bit, blocks of 64, as bitsandbytes), nf4-dq "
          "(nf4 with double-quantized scales, bitsandbytes' Linear4bit default), int8 (per output channel), int4 "
          "(4-bit affine, blocks of 64; for inference) or none",
          o.quantize);
  t.check([&o] { quant::parse_format(o.quantize, "--quantize"); });
  t.check([&o] { o.model_dir = io::resolve_model_dir(o.model_dir, "--model"); });
}

void add_tokenizer_option(OptionTable& t, recipes::ModelOptions& o, const std::string& group) {
  t.optional(group, "tokenizer", "SentencePiece .model file (default: the model folder's tokenizer.model)",
             o.tokenizer_file);
}

void add_record_options(OptionTable& t, data::RecordOptions& o, const std::string& group) {
  t.value(group, "chat-template", "template of messages records: chatml, llama2, alpaca, or model (the model folder's own chat_template, "
          "rendered as transformers' apply_chat_template)", o.chat_template);
  t.value(group, "label-field", "record field holding the class label", o.label_field);
  t.value(group, "weight-field", "record field holding the sampling weight (--sampling weighted)", o.weight_field);
  t.check([&o] { data::validate_chat_template(o.chat_template, "--chat-template"); });
}

void add_data_options(OptionTable& t, data::DatasetOptions& o) {
  add_record_options(t, o.records, "data");
  t.value("data", "max-seq-len", "longest sample in tokens", o.tokens.max_seq_len);
  t.choice("data", "overlength", "samples over --max-seq-len: truncate, drop or error", o.tokens.overlength,
           data::parse_overlength, data::overlength_name);
  t.flag("data", "train-on-prompt", "put the loss on prompts too, not only on completions", o.tokens.train_on_prompt);
  t.flag("data", "skip-bad-lines", "skip malformed dataset lines (and report how many) instead of failing",
         o.jsonl.skip_bad_lines);
  t.optional("data", "data-cache",
             "folder caching tokenized datasets, keyed by file, tokenizer and settings (off when unset)", o.cache_dir);
  t.check([&o] {
    HYFT_CHECK(o.tokens.max_seq_len >= 2, "--max-seq-len must be at least 2, got ", o.tokens.max_seq_len);
  });
}

}  // namespace hyft::app
