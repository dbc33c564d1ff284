// The command line: --config YAML merged under the command line, unknown keys and
// options suggesting the closest name, --help listing defaults, doctor.
#include "support/catch.h"
#include "support/process.h"

#include <fstream>

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

TEST_CASE("--help on every command lists every option with its default", "[app]") {
  for (const std::string cmd : {"finetune", "eval", "export", "generate", "bench", "doctor", "data stats",
                                "tokenizer train", "model init"}) {
    const auto r = test::run_hyft(cmd + " --help");
    INFO(cmd << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    REQUIRE(r.out.find("--config") != std::string::npos);
    REQUIRE(r.out.find("--help") != std::string::npos);
  }
  const auto r = test::run_hyft("finetune --help");
  for (const char* flag : {"--lora-r", "--lr-schedule", "--grad-accum", "--resume", "--sampling", "--packing",
                           "--max-seq-len", "--overlength", "--eval-split", "--save-every"})
    REQUIRE(r.out.find(flag) != std::string::npos);
  REQUIRE(r.out.find("(default: 2048)") != std::string::npos);
  REQUIRE(r.out.find("(default: 0.1)") != std::string::npos);
}

TEST_CASE("hyft doctor reports versions", "[app]") {
  const auto r = test::run_hyft("doctor");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("LibTorch    2.") != std::string::npos);
  REQUIRE(r.out.find("GPUs") != std::string::npos);
}
