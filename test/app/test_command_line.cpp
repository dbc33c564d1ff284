// The command line: --config YAML merged under the command line, unknown keys and
// options suggesting the closest name, --help showing the option structs' defaults,
// aliases, doctor.
#include "support/catch.h"
#include "support/process.h"

#include "common/strings.h"
#include "recipes/bench.h"
#include "recipes/evaluate.h"
#include "recipes/export.h"
#include "recipes/finetune.h"
#include "recipes/generate.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

using namespace hyft;

namespace {
std::string llama(const std::string& name) { return std::string(HYFT_FIXTURES) + "/llama/" + name; }
}  // namespace

TEST_CASE("--config YAML values apply and the command line overrides them", "[app]") {
  const std::string dir = test::temp_dir("config");
  std::ofstream(dir + "/run.yaml") << "micro_batch: 3\nmax_steps: 2\nlr: 0.0005\nlr_schedule: constant\n"
                                      "targets: [q_proj, v_proj]\ngrad_checkpointing: true\nlog_every: 1\n"
                                      "train: " + llama("mha") + "/data.jsonl\n";
  const std::string base = "finetune --device cpu --model " + test::quote(llama("mha") + "/model") + " --config " +
                           test::quote(dir + "/run.yaml");
  auto r = test::run_hyft(base + " --output " + test::quote(dir + "/a"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("micro-batch 3 x accumulation 1") != std::string::npos);
  REQUIRE(r.out.find("gradient checkpointing") != std::string::npos);
  REQUIRE(r.out.find("lr 5.000e-04") != std::string::npos);
  REQUIRE(r.out.find("training 2 steps") != std::string::npos);
  r = test::run_hyft(base + " --output " + test::quote(dir + "/b") + " --micro-batch 5 --lr 0.001");
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("micro-batch 5 x accumulation 1") != std::string::npos);
  REQUIRE(r.out.find("lr 1.000e-03") != std::string::npos);
}

TEST_CASE("unknown options and keys are errors that suggest the closest name", "[app]") {
  const std::string dir = test::temp_dir("config_bad");
  std::ofstream(dir + "/bad.yaml") << "micro_batch: 2\nlearning_rat: 0.1\n";
  auto r = test::run_hyft("finetune --config " + test::quote(dir + "/bad.yaml"));
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("bad.yaml:2: unknown key 'learning_rat'") != std::string::npos);
  std::ofstream(dir + "/typo.yaml") << "micro_bach: 2\n";
  r = test::run_hyft("finetune --config " + test::quote(dir + "/typo.yaml"));
  REQUIRE(r.err.find("did you mean micro_batch?") != std::string::npos);
  r = test::run_hyft("eval --modle x --data y");
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("unknown option --modle; did you mean --model?") != std::string::npos);
  REQUIRE(test::run_hyft("no-such-command").exit_code == 2);
  std::ofstream(dir + "/flag.yaml") << "packing: maybe\n";
  r = test::run_hyft("finetune --config " + test::quote(dir + "/flag.yaml"));
  REQUIRE(r.err.find("switch: true or false") != std::string::npos);
}

namespace {

// option name -> the default its --help entry shows ("" when it shows none).
// cxxopts prints an entry as "  -h, --name arg   description (default: x)", the
// description wrapped onto lines indented past the option column.
std::map<std::string, std::string> help_defaults(const std::string& help) {
  std::vector<std::string> entries;
  std::istringstream lines(help);
  for (std::string line; std::getline(lines, line);) {
    const auto indent = line.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    if (indent < 10 && line[indent] == '-') entries.push_back(line);
    else if (!entries.empty() && indent >= 10) entries.back() += " " + line.substr(indent);
  }
  std::map<std::string, std::string> out;
  for (const auto& e : entries) {
    const auto dash = e.find("--");
    if (dash == std::string::npos) continue;
    const auto end = e.find_first_of(" =[", dash);
    std::string value;
    const auto d = e.find("(default: ");
    if (d != std::string::npos) value = trim(e.substr(d + 10, e.find(')', d) - d - 10));
    out[e.substr(dash + 2, end - dash - 2)] = value;
  }
  return out;
}

std::string shown(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

TEST_CASE("--help shows the defaults the recipes' option structs hold", "[app]") {
  // finetune: every setting of the resolved config that --help shows has the
  // struct's default, and each command lists its own options.
  const auto r = test::run_hyft("finetune --help");
  REQUIRE(r.exit_code == 0);
  const auto help = help_defaults(r.out);
  const nlohmann::json config = recipes::resolved_config(recipes::FinetuneOptions{});
  int compared = 0;
  for (const auto& [key, value] : config.items()) {
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    INFO("--" << flag);
    REQUIRE(help.count(flag));
    // Unset by default (--model, --eval, the hybrid flags): nothing to compare.
    if (value.is_null() || value == "" || help.at(flag).empty()) continue;
    if (value.is_number_float()) {
      REQUIRE(std::stod(help.at(flag)) == value.get<double>());
    } else if (value.is_array()) {  // a list: shown comma-separated ("" when empty)
      std::string joined;
      for (const auto& item : value) joined += (joined.empty() ? "" : ",") + item.get<std::string>();
      REQUIRE(help.at(flag) == (joined.empty() ? "\"\"" : joined));
    } else {
      REQUIRE(help.at(flag) == shown(value));
    }
    ++compared;
  }
  std::printf("finetune --help: %d defaults equal the struct's\n", compared);
  REQUIRE(compared >= 30);

  const recipes::EvalOptions eval_defaults;
  REQUIRE(help_defaults(test::run_hyft("eval --help").out).at("micro-batch") ==
          std::to_string(eval_defaults.eval.micro_batch));
  const recipes::GenerateOptions gen;
  const auto g = help_defaults(test::run_hyft("generate --help").out);
  REQUIRE(std::stod(g.at("temperature")) == gen.settings.sampling.temperature);
  REQUIRE(std::stod(g.at("top-p")) == gen.settings.sampling.top_p);
  REQUIRE(std::stod(g.at("repetition-penalty")) == gen.settings.sampling.repetition_penalty);
  REQUIRE(g.at("max-new-tokens") == std::to_string(gen.settings.max_new_tokens));
  const recipes::BenchOptions bench;
  const auto b = help_defaults(test::run_hyft("bench --help").out);
  REQUIRE(b.at("seq") == std::to_string(bench.seq));
  REQUIRE(b.at("micro-batch") == std::to_string(bench.micro_batch));
  REQUIRE(b.at("lora-r") == std::to_string(bench.lora.r));
  REQUIRE(b.at("grad-checkpointing") == train::checkpointing_name(bench.checkpointing));
  for (const std::string cmd : {"export", "doctor", "data stats", "data render", "tokenizer train", "tokenizer encode",
                                "tokenizer decode", "model init"})
    REQUIRE(test::run_hyft(cmd + " --help").exit_code == 0);
  REQUIRE(help_defaults(test::run_hyft("export --help").out).at("shard-size") == recipes::ExportOptions{}.shard_size);
}

TEST_CASE("bench takes finetune's option names and its old spellings alike", "[app]") {
  const std::string common = "bench --device cpu --shape tiny --seq 16 --steps 1 --warmup 0";
  const auto run = [&](const std::string& flags) {
    const auto r = test::run_hyft(common + " " + flags);
    INFO(flags << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  };
  const auto now = run("--micro-batch 2 --lora-r 4 --lora-alpha 8 --grad-checkpointing=false");
  const auto old = run("--batch 2 --rank 4 --alpha 8 --grad-ckpt 0 --mode lora");
  for (const char* key : {"batch", "rank", "grad_ckpt", "mode", "loss"}) {
    INFO(key);
    REQUIRE(now[key] == old[key]);
  }
  REQUIRE(now["batch"] == 2);
  REQUIRE(now["rank"] == 4);
  REQUIRE(now["grad_ckpt"] == 0);
  REQUIRE(run("--grad-ckpt 1 --mode full")["mode"] == "full");
  const auto bad = test::run_hyft(common + " --grad-ckpt 2");
  REQUIRE(bad.exit_code == 2);
  REQUIRE(bad.err.find("--grad-ckpt: '2' is not one of 0, 1") != std::string::npos);
}

TEST_CASE("hyft doctor reports versions", "[app]") {
  const auto r = test::run_hyft("doctor");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("LibTorch    2.") != std::string::npos);
  REQUIRE(r.out.find("GPUs") != std::string::npos);
}

TEST_CASE("a first day's details: HF names, --resume PATH, finished runs, weights, metrics", "[app]") {
  const std::string dir = test::temp_dir("first_day");
  const std::string model = test::quote(llama("mha") + "/model"), data = test::quote(llama("mha") + "/data.jsonl");
  const std::string base = "finetune --device cpu --model " + model + " --train " + data + " --log-every 1 ";

  // Hugging Face's TrainingArguments names, on the command line and as YAML keys.
  std::ofstream(dir + "/hf.yaml") << "learning_rate: 0.0005\nper_device_train_batch_size: 3\n";
  auto r = test::run_hyft(base + "--config " + test::quote(dir + "/hf.yaml") + " --max-steps 2 --output-dir " +
                          test::quote(dir + "/hf"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("micro-batch 3 x accumulation 1") != std::string::npos);
  REQUIRE(r.out.find("lr 5.000e-04") != std::string::npos);

  // metrics.jsonl: epoch, tokens seen, elapsed time, the CPU's peak memory.
  const auto first = nlohmann::json::parse(test::read_text(dir + "/hf/metrics.jsonl").substr(0,
                                           test::read_text(dir + "/hf/metrics.jsonl").find('\n')));
  for (const char* key : {"epoch", "tokens_seen", "elapsed_s", "peak_mem_gib"}) REQUIRE(first.contains(key));
  REQUIRE(first["tokens_seen"].get<int64_t>() > 0);
  REQUIRE(first["peak_mem_gib"].get<double>() > 0);

  // --resume PATH (with a space) continues from that checkpoint; resuming a
  // finished run says so instead of "done: 0 steps".
  r = test::run_hyft(base + "--max-steps 4 --save-every 2 --micro-batch 2 --output " + test::quote(dir + "/run"));
  REQUIRE(r.exit_code == 0);
  r = test::run_hyft(base + "--max-steps 4 --save-every 2 --micro-batch 2 --output " + test::quote(dir + "/run") +
                     " --resume " + test::quote(dir + "/run/checkpoints/step-2"));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("resumed from " + dir + "/run/checkpoints/step-2 (step 2)") != std::string::npos);
  // metrics.jsonl was cut back to step 2 before the resumed steps were logged: each step once.
  std::map<int64_t, int> rows;
  std::istringstream metrics(test::read_text(dir + "/run/metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) ++rows[j["step"].get<int64_t>()];
  }
  REQUIRE(rows == std::map<int64_t, int>{{1, 1}, {2, 1}, {3, 1}, {4, 1}});
  // Folders an interrupted (dead) process left half-written are removed at the next start.
  const std::string dead_pid = trim(test::run("sh -c 'echo $$'").out);
  std::filesystem::create_directories(dir + "/run/adapter.tmp-" + dead_pid);
  std::filesystem::create_directories(dir + "/run/checkpoints/step-9.tmp-" + dead_pid);
  r = test::run_hyft(base + "--max-steps 4 --save-every 2 --micro-batch 2 --output " + test::quote(dir + "/run") +
                     " --resume");
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("already complete (step 4 of 4)") != std::string::npos);
  REQUIRE(r.out.find("done: ") == std::string::npos);
  REQUIRE(r.out.find("removed 2 unfinished folder(s)") != std::string::npos);
  REQUIRE_FALSE(std::filesystem::exists(dir + "/run/adapter.tmp-" + dead_pid));

  // Weighted sampling needs weights: refused without them, read from --weight-field.
  {
    std::ofstream f(dir + "/w.jsonl");
    for (int i = 0; i < 6; ++i)
      f << nlohmann::json({{"input_ids", {5 + i, 6, 7, 8}}, {"w", 1 + i}}).dump() << "\n";
  }
  const std::string weighted = "finetune --device cpu --model " + model + " --train " + test::quote(dir + "/w.jsonl") +
                               " --max-steps 1 --sampling weighted --output ";
  r = test::run_hyft(weighted + test::quote(dir + "/w1"));
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("no record carries a weight other than 1 in the field 'weight'") != std::string::npos);
  r = test::run_hyft(weighted + test::quote(dir + "/w2") + " --weight-field w");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("generate --prompt with --chat-template renders the prompt as a user turn", "[app]") {
  const std::string dir = test::temp_dir("prompt_template");
  std::ofstream(dir + "/config.json") << R"({"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 2, "max_position_embeddings": 128})";
  auto r = test::run_hyft("model init --model-config " + test::quote(dir + "/config.json") + " --tokenizer " +
                          test::quote(std::string(HYFT_FIXTURES) + "/tokenizer/test.model") + " --output " +
                          test::quote(dir + "/model"));
  REQUIRE(r.exit_code == 0);
  const std::string gen = "generate --device cpu --model " + test::quote(dir + "/model") +
                          " --prompt 'What is green?' --max-new-tokens 2 --temperature 0 --log ";
  REQUIRE(test::run_hyft(gen + test::quote(dir + "/plain.jsonl")).exit_code == 0);
  REQUIRE(test::run_hyft(gen + test::quote(dir + "/chat.jsonl") + " --chat-template chatml").exit_code == 0);
  const auto plain = nlohmann::json::parse(test::read_text(dir + "/plain.jsonl"));
  const auto chat = nlohmann::json::parse(test::read_text(dir + "/chat.jsonl"));
  REQUIRE(plain["prompt"] == "What is green?");
  REQUIRE(chat["prompt"] == "<|im_start|>user\nWhat is green?<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("a model id resolves from the local Hugging Face cache, never downloaded", "[app]") {
  // The hub layout: models--ORG--NAME/{refs/main, snapshots/REV/...}.
  const std::string cache = test::temp_dir("hf_home") + "/hub";
  const std::string snapshot = cache + "/models--test-org--tiny-llama/snapshots/0123abc";
  std::filesystem::create_directories(snapshot);
  std::filesystem::create_directories(cache + "/models--test-org--tiny-llama/refs");
  std::ofstream(cache + "/models--test-org--tiny-llama/refs/main") << "0123abc";
  for (const auto& entry : std::filesystem::directory_iterator(llama("mha") + "/model"))
    std::filesystem::copy_file(entry.path(), snapshot + "/" + entry.path().filename().string());
  const std::string data = test::quote(llama("mha") + "/data.jsonl");
  const std::string env = "HF_HUB_CACHE=" + test::quote(cache) + " " + test::quote(HYFT_BIN) + " ";
  auto r = test::run(env + "eval --json --device cpu --model test-org/tiny-llama --data " + data);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto direct = test::run_hyft("eval --json --device cpu --model " + test::quote(llama("mha") + "/model") +
                                     " --data " + data);
  REQUIRE(nlohmann::json::parse(r.out)["loss"] == nlohmann::json::parse(direct.out)["loss"]);
  r = test::run(env + "eval --device cpu --model test-org/absent-model --data " + data);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("not in the Hugging Face cache") != std::string::npos);
  REQUIRE(r.err.find("does not download") != std::string::npos);
}

TEST_CASE("a run folder knows its run: reuse refused, --overwrite clears, changed settings listed", "[app]") {
  const std::string dir = test::temp_dir("run_folder");
  const std::string out = test::quote(dir + "/run");
  const std::string base = "finetune --device cpu --model " + test::quote(llama("mha") + "/model") + " --train " +
                           test::quote(llama("mha") + "/data.jsonl") + " --micro-batch 2 --save-every 2 --output " + out;
  auto r = test::run_hyft(base + " --max-steps 4 --lr 0.003");
  REQUIRE(r.exit_code == 0);
  REQUIRE(std::filesystem::exists(dir + "/run/checkpoints/step-4"));

  // Another fresh run into the same folder is refused before any work.
  r = test::run_hyft(base + " --max-steps 2");
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("holds another run") != std::string::npos);
  REQUIRE(r.err.find("--overwrite") != std::string::npos);

  // --resume with a different setting is refused with the list, accepted on request.
  r = test::run_hyft(base + " --max-steps 6 --lr 0.5 --resume");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("lr: 0.003 -> 0.5") != std::string::npos);
  REQUIRE(r.err.find("max_steps: 4 -> 6") != std::string::npos);
  r = test::run_hyft(base + " --max-steps 6 --lr 0.5 --resume --accept-changes");
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("resuming with changed settings") != std::string::npos);

  // --overwrite clears the old run first: its step-6 checkpoint is gone.
  r = test::run_hyft(base + " --max-steps 2 --overwrite");
  REQUIRE(r.exit_code == 0);
  REQUIRE_FALSE(std::filesystem::exists(dir + "/run/checkpoints/step-6"));
  REQUIRE(std::filesystem::exists(dir + "/run/checkpoints/step-2"));
}

TEST_CASE("one overwrite rule: commands that write a file refuse an existing one without --force", "[app]") {
  const std::string dir = test::temp_dir("overwrite");
  const std::string taken = dir + "/taken.txt";
  std::ofstream(taken) << "keep me\n";
  std::ofstream(dir + "/d.jsonl") << R"({"text": "hello"})" << "\n";
  for (const std::string& cmd : {"data render --data " + test::quote(dir + "/d.jsonl") + " --output ",
                                "tokenizer train --input " + test::quote(dir + "/d.jsonl") + " --output ",
                                "generate --model " + test::quote(llama("mha") + "/model") + " --input " +
                                    test::quote(dir + "/d.jsonl") + " --output "}) {
    const auto r = test::run_hyft(cmd + test::quote(taken));
    INFO(cmd << ": " << r.err);
    REQUIRE(r.exit_code == 2);
    REQUIRE(r.err.find("exists; pass --force to replace it") != std::string::npos);
    REQUIRE(test::read_text(taken) == "keep me\n");
  }
  const auto r = test::run_hyft("data render --data " + test::quote(dir + "/d.jsonl") + " --force --output " +
                                test::quote(taken));
  REQUIRE(r.exit_code == 0);
  REQUIRE(test::read_text(taken).find("hello") != std::string::npos);
}

TEST_CASE("deeply nested JSON is refused at once", "[app]") {
  const std::string dir = test::temp_dir("nesting");
  std::ofstream(dir + "/deep.jsonl") << std::string(5'000'000, '[') << "\n";
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = test::run_hyft("data stats --data " + test::quote(dir + "/deep.jsonl"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(r.err);
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("deep.jsonl:1: nests arrays/objects deeper than 128 levels") != std::string::npos);
  std::printf("5 MB line of '[' refused in %.2f s\n", s);
}

TEST_CASE("long option values arrive whole, from the command line and from --config", "[app]") {
  // cxxopts matched "--name=value" against a std::regex that recursed per character:
  // a 40 KB value from a --config file overflowed the stack (found by hyft_fuzz).
  const std::string dir = test::temp_dir("long_values");
  const std::string path(100'000, 'm');
  std::ofstream(dir + "/long.yaml") << "model: " << std::string(200'000, 'm') << "\n";
  for (const std::string& args :
       {"eval --model=" + path + " --data x.jsonl", "eval --model " + path + " --data x.jsonl",
        "eval --config " + test::quote(dir + "/long.yaml") + " --data x.jsonl"}) {
    const auto r = test::run_hyft(args);
    REQUIRE(r.exit_code == 2);  // no such model folder: a plain refusal naming the value
    REQUIRE(r.err.find("--model mmmmmmmmmm") != std::string::npos);
  }
  // A switch's value is true or false; a long one is refused before cxxopts reads it.
  const auto r = test::run_hyft("finetune --packing=" + std::string(100'000, 't'));
  REQUIRE(r.exit_code == 2);
  REQUIRE(r.err.find("an argument of 100010 characters ('--packing=...')") != std::string::npos);
}
