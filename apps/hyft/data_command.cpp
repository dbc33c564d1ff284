// hyft data stats: what a dataset holds under the length and sampling settings.
#include "commands.h"

#include "common/error.h"
#include "data/dataset.h"
#include "data/records.h"
#include "io/atomic_file.h"
#include "data/sampler.h"
#include "model/llama_config.h"
#include "recipes/model_setup.h"
#include "shared_options.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>

namespace hyft::app {

namespace {

int data_stats(int argc, char** argv) {
  std::string path;
  recipes::ModelOptions model;
  data::SamplerOptions sampling;
  data::DatasetOptions options;
  bool json = false;
  OptionTable opts(argv[0], "Records by kind, tokens, truncated and dropped counts under the length settings, "
                            "label counts and the sampling probability of each label.");
  opts.optional("", "data", "JSONL dataset", path);
  opts.optional("", "model", "model folder (for its tokenizer.model and vocabulary size)", model.model_dir);
  opts.choice("", "sampling", "uniform, weighted or balanced", sampling.kind, data::parse_sampling,
              data::sampling_name);
  opts.value("", "balance-power", "p of balanced sampling: weight 1 / count(label)^p, in [0, 1]",
             sampling.balance_power);
  opts.flag("", "json", "print one JSON object on stdout", json);
  add_tokenizer_option(opts, model, "data");
  add_data_options(opts, options);
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!path.empty(), argv[0], "data");
  const auto tok = recipes::find_tokenizer(model);
  recipes::resolve_chat_template(options.records, model);
  int64_t vocab = std::numeric_limits<int64_t>::max();
  if (!model.model_dir.empty()) vocab = model::load_llama_config(model.model_dir + "/config.json").vocab_size;
  else if (tok) vocab = tok->vocab_size();

  const auto d = data::load_dataset(path, tok.get(), vocab, options);
  const auto kind = sampling.kind;
  const double power = sampling.balance_power;
  const auto probs = data::sampling_probabilities(d.examples, kind, power);
  const auto labels = data::label_distribution(d.examples, probs);
  const auto& s = d.stats;

  if (json) {
    nlohmann::ordered_json j;
    j["data"] = path;
    j["records"] = s.records;
    j["records_by_kind"] = s.records_by_kind;
    j["skipped_lines"] = s.skipped_lines;
    j["examples"] = d.examples.size();
    j["tokens"] = s.tokens;
    j["target_tokens"] = s.target_tokens;
    j["longest"] = s.longest;
    j["max_seq_len"] = options.tokens.max_seq_len;
    j["truncated"] = s.truncated;
    j["dropped_overlength"] = s.dropped_overlength;
    j["dropped_no_target"] = s.dropped_no_target;
    j["sampling"] = data::sampling_name(kind);
    j["balance_power"] = power;
    nlohmann::ordered_json lj = nlohmann::ordered_json::object();
    for (const auto& [label, cp] : labels) lj[label] = {{"count", cp.first}, {"probability", cp.second}};
    j["labels"] = lj;
    std::cout << j.dump() << std::endl;
    return 0;
  }
  std::printf("dataset        %s\n", path.c_str());
  std::printf("records        %lld (", static_cast<long long>(s.records));
  bool first = true;
  for (const auto& [k, n] : s.records_by_kind) {
    std::printf("%s%s %lld", first ? "" : ", ", k.c_str(), static_cast<long long>(n));
    first = false;
  }
  std::printf(")\nskipped lines  %lld\nexamples       %zu\n", static_cast<long long>(s.skipped_lines), d.examples.size());
  std::printf("tokens         %lld (targets %lld), longest %lld, mean %.1f\n", static_cast<long long>(s.tokens),
              static_cast<long long>(s.target_tokens), static_cast<long long>(s.longest),
              double(s.tokens) / double(d.examples.size()));
  std::printf("truncated      %lld (at max_seq_len %lld)\n", static_cast<long long>(s.truncated),
              static_cast<long long>(options.tokens.max_seq_len));
  std::printf("dropped        %lld over max_seq_len, %lld with no target token left\n",
              static_cast<long long>(s.dropped_overlength), static_cast<long long>(s.dropped_no_target));
  std::printf("labels         (field '%s', sampling %s%s)\n", options.records.label_field.c_str(),
              data::sampling_name(kind), kind == data::SamplingKind::Balanced ? (", p = " + nlohmann::json(power).dump()).c_str() : "");
  std::printf("  %-20s %10s %8s %12s\n", "label", "count", "share", "draw prob.");
  for (const auto& [label, cp] : labels)
    std::printf("  %-20s %10lld %7.2f%% %11.2f%%\n", label.c_str(), static_cast<long long>(cp.first),
                100.0 * double(cp.first) / double(d.examples.size()), 100.0 * cp.second);
  return 0;
}

// Each record rendered by its template into segments, for tokenizers hyft cannot
// run itself (scripts/tokenize_with_hf.py turns them into input_ids and labels).
int data_render(int argc, char** argv) {
  std::string path, output;
  data::RecordOptions ro;
  data::JsonlOptions jo;
  recipes::ModelOptions model;
  OptionTable opts(argv[0], "Render every record by its template into segments (text, whether it carries "
                            "the loss, BOS/EOS markers) as JSONL, for an external tokenizer; with a tokenizer "
                            "(--model or --tokenizer) also the input_ids and labels hyft trains on.");
  opts.optional("", "data", "JSONL dataset", path);
  opts.optional("", "output", "JSONL to write (default: stdout)", output);
  opts.optional("", "model", "model folder whose tokenizer.model encodes the records", model.model_dir);
  add_tokenizer_option(opts, model, "");
  opts.flag("", "skip-bad-lines", "skip malformed lines instead of failing", jo.skip_bad_lines);
  bool force = false;
  opts.flag("", "force", "replace an existing --output file", force);
  add_record_options(opts, ro, "");
  if (!parse_or_help(opts, argc, argv)) return 0;
  require(!path.empty(), argv[0], "data");
  if (!output.empty()) io::check_output_file(output, force, "--output");
  const auto tok = recipes::find_tokenizer(model);
  recipes::resolve_chat_template(ro, model);
  std::string out;
  data::read_jsonl(path, [&](const data::JsonlLine& line) {
    const data::Record r = data::parse_record(line, ro, std::numeric_limits<int64_t>::max());
    nlohmann::ordered_json j;
    j["line"] = line.line;
    j["kind"] = data::kind_name(r.kind);  // chat records encode as transformers' chat templates do
    if (r.kind == data::RecordKind::Pretokenized) {
      j["input_ids"] = r.pretokenized.input_ids;
      j["labels"] = r.pretokenized.labels;
    } else {
      nlohmann::ordered_json segs = nlohmann::ordered_json::array();
      for (const auto& seg : r.segments) {
        if (seg.special == data::Segment::Special::None) segs.push_back({{"text", seg.text}, {"train", seg.trainable}});
        else if (seg.special == data::Segment::Special::Token)
          segs.push_back({{"special", seg.text}, {"train", seg.trainable}});
        else segs.push_back({{"special", seg.special == data::Segment::Special::Bos ? "bos" : "eos"},
                             {"train", seg.trainable}});
      }
      j["segments"] = segs;
    }
    if (tok && r.kind != data::RecordKind::Pretokenized) {
      const data::Example ex = data::tokenize_record(r, tok.get(), /*train_on_prompt=*/false);
      j["input_ids"] = ex.input_ids;
      j["labels"] = ex.labels;
    }
    j["weight"] = r.weight;
    if (r.label) j["label"] = *r.label;
    out += j.dump() + "\n";
  }, jo);
  if (!output.empty()) io::write_file_atomic(output, out);
  else std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int data_command(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "render")
    return run_verb(argc, argv, "render", "hyft data render --data FILE [--output FILE]", data_render);
  return run_verb(argc, argv, "stats",
                  "hyft data stats --data FILE [--model DIR | --tokenizer FILE] [--json]\n"
                  "       hyft data render --data FILE [--output FILE]",
                  data_stats);
}

}  // namespace hyft::app
