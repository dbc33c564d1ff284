// hyft_fuzz: a bounded mutation fuzzer for the files hyft reads. For each target
// (safetensors, config, jsonl, yaml, adapter_config, data_cache) it starts from
// valid seeds, replays the kept regression inputs under test/fuzz/regressions/,
// then mutates (bit flips, interesting bytes and integers, the format's own tokens,
// insertions, deletions, duplications, splices) for a bounded time and feeds each
// input to the real reader through a file, as the program does.
//
// Every input must end in one of two ways: read (accepted) or refused with a
// hyft::UserError whose message names the file and carries no raw library text.
// Anything else is a failure: another exception type, raw library text, a crash
// (SIGSEGV, SIGABRT, ...) or a hang. A failing input is kept under --crash-dir (for
// a crash or hang, by the signal handler itself) so it can be added to the
// regressions, and the run exits 1.
//
//   hyft_fuzz --target yaml --seconds 10 --crash-dir build/fuzz-crashes [--seed N]
//             [--regressions test/fuzz/regressions] [--tokenizer test.model]
#include "adapters/peft_format.h"
#include "common/error.h"
#include "data/dataset.h"
#include "data/dataset_cache.h"
#include "data/jsonl.h"
#include "data/records.h"
#include "io/remove_tree.h"
#include "io/safetensors.h"
#include "model/llama_config.h"
#include "tokenizer/tokenizer.h"

#include "commands.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace hyft;

namespace {

// ---------------------------------------------------------------- files ----------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// ------------------------------------------------ crash and hang keeping ---------
// The input under test lies in g_input; on a fatal signal (or the alarm of a hang)
// the handler renames it to g_keep, says so and exits. Both paths are set before
// each input, so the handler only calls async-signal-safe functions.

char g_input[4096];
char g_keep[4096];
int g_err = 2;  // the real stderr; fd 2 itself goes to /dev/null while inputs are read (warnings)

extern "C" void on_fatal(int sig) {
  rename(g_input, g_keep);
  const char* what = sig == SIGALRM ? "hang (over 10 s): input kept at " : "crash (fatal signal): input kept at ";
  (void)!write(g_err, what, strlen(what));
  (void)!write(g_err, g_keep, strlen(g_keep));
  (void)!write(g_err, "\n", 1);
  _exit(sig == SIGALRM ? 4 : 3);
}

void install_fatal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM}) sigaction(sig, &sa, nullptr);
}

// ------------------------------------------------------------ targets ------------

// A target reads the input at `path` (for adapter_config, `path` is the
// adapter_config.json inside an adapter folder) and returns whether it was
// accepted; refusals throw UserError.
struct Target {
  const char* name;
  const char* file_name;                // what the input is called on disk
  std::vector<std::string> dictionary;  // the format's own tokens, for insertions
  std::function<std::vector<std::string>(const std::string& work)> seeds;
  std::function<bool(const std::string& path)> read;
  bool message_names_file = true;  // a refusal must name the file
};

const char* kLlamaConfig = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 16,
  "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
  "head_dim": 8, "max_position_embeddings": 64, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 32},
  "bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": null, "tie_word_embeddings": false,
  "sliding_window": 16, "global_ratio": 0.25, "torch_dtype": "bfloat16", "hidden_act": "silu"
})";

const char* kMistralConfig = R"({"model_type": "mistral", "vocab_size": 32, "hidden_size": 8, "intermediate_size": 16,
  "num_hidden_layers": 1, "num_attention_heads": 1, "rope_parameters": {"rope_theta": 500.0, "rope_type": "linear",
  "factor": 2.0}})";

const char* kJsonl =
    "{\"text\": \"hello world\", \"weight\": 2.5, \"label\": \"a\"}\n"
    "{\"prompt\": \"Q: 1+1?\", \"completion\": \" 2\"}\n"
    "{\"instruction\": \"Say hi\", \"input\": \"\", \"output\": \"hi\"}\n"
    "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"},"
    " {\"role\": \"assistant\", \"content\": \"hello\"}]}\n"
    "{\"input_ids\": [1, 5, 7, 2], \"labels\": [-100, 5, 7, 2]}\n";

const char* kYaml =
    "# a training config\n"
    "lr: 0.0002\n"
    "steps: 10\n"
    "name: run-1\n"
    "targets: [q_proj, v_proj]\n"
    "packing: true\n"
    "seed: 7\n"
    "ratio: 0.5\n"
    "mode: fast\n";

const char* kAdapterConfig = R"({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4,
  "lora_dropout": 0.0, "use_rslora": false, "target_modules": ["q_proj"], "bias": "none",
  "base_model_name_or_path": "base", "fan_in_fan_out": false, "modules_to_save": null})";

std::string g_tokenizer_path;  // --tokenizer: the jsonl target also tokenizes
data::Dataset g_cached;        // what the data_cache seed holds

bool same_examples(const data::Dataset& a, const data::Dataset& b) {
  if (a.examples.size() != b.examples.size()) return false;  // (max_seq_len is in the cache key, not the entry)
  for (size_t i = 0; i < a.examples.size(); ++i) {
    const auto &x = a.examples[i], &y = b.examples[i];
    if (x.input_ids != y.input_ids || x.labels != y.labels || x.weight != y.weight || x.label != y.label ||
        x.line != y.line)
      return false;
  }
  return a.stats.records_by_kind == b.stats.records_by_kind;
}

std::vector<Target> make_targets() {
  const std::vector<std::string> json_words = {
      "{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "-1", "0", "1e309", "-1e309", "NaN", "1.5",
      "9223372036854775807", "-9223372036854775808", "18446744073709551615", "\"\\u0000\"", "\"\\ud800\"",
      "\xff", "\xc3", "[[[[[[[[", "{\"a\":{\"a\":{", "\"\"", "\n", "\\"};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  std::vector<Target> t;

  t.push_back({"safetensors", "model.safetensors",
               with(json_words, {"dtype", "shape", "data_offsets", "__metadata__", "F32", "BF16", "F16", "I64", "U8",
                                 "F64", "BOOL", "F8_E4M3"}),
               [](const std::string& work) {
                 const std::string a = work + "/seed-a.safetensors", b = work + "/seed-b.safetensors";
                 io::save_safetensors(a, {{"w", at::arange(12, at::kFloat).reshape({3, 4})},
                                          {"b", at::ones({5}, at::kBFloat16)},
                                          {"i", at::arange(3, at::kLong)}},
                                      {{"format", "pt"}});
                 io::save_safetensors(b, {{"s", at::scalar_tensor(2.0, at::kDouble)},
                                          {"e", at::zeros({0, 4}, at::kHalf)}});
                 return std::vector<std::string>{read_file(a), read_file(b)};
               },
               [](const std::string& path) {
                 io::SafetensorsFile f(path);
                 for (const auto& k : f.keys()) (void)f.tensor(k).to(at::kDouble).sum().item<double>();
                 return true;  // every tensor read
               }});

  t.push_back({"config", "config.json",
               with(json_words, {"vocab_size", "hidden_size", "num_attention_heads", "num_key_value_heads",
                                 "head_dim", "rope_scaling", "rope_type", "factor", "llama3", "dynamic", "linear",
                                 "eos_token_id", "sliding_window", "global_ratio", "architectures",
                                 "MistralForCausalLM", "rope_parameters"}),
               [](const std::string&) { return std::vector<std::string>{kLlamaConfig, kMistralConfig}; },
               [](const std::string& path) {
                 (void)model::load_llama_config(path);
                 return true;
               }});

  t.push_back({"jsonl", "data.jsonl",
               with(json_words, {"text", "prompt", "completion", "messages", "role", "content", "user", "assistant",
                                 "system", "input_ids", "labels", "weight", "label", "instruction", "output",
                                 "<|im_start|>", "</s>", "<s>"}),
               [](const std::string&) { return std::vector<std::string>{kJsonl}; },
               [](const std::string& path) {
                 data::RecordOptions options;
                 int64_t n = 0;
                 data::read_jsonl(path, [&](const data::JsonlLine& line) {
                   (void)data::parse_record(line, options, 64);
                   ++n;
                 });
                 if (!g_tokenizer_path.empty()) {
                   static const tokenizer::Tokenizer tok(g_tokenizer_path);
                   data::DatasetOptions o;
                   o.tokens.max_seq_len = 32;
                   o.threads = 1;
                   (void)data::load_dataset(path, &tok, 500, o);
                 }
                 return n > 0;
               }});

  t.push_back({"yaml", "config.yaml",
               {": ", "- ", "[", "]", "{", "}", "!!str ", "!!binary ", "&a ", "*a", "<<: *a", "~", "|", ">", "\t",
                "'", "\"", "#", "---", "...", "%YAML 1.2\n", "? ", "lr", "steps", "name", "targets", "packing",
                "learning_rate", "1e999", "-1", "abc", "2.5", "null", "yes", "\xff", "\n  ", "[[[[[[", "{{{{{{"},
               [](const std::string&) { return std::vector<std::string>{kYaml}; },
               [](const std::string& path) {
                 // A table of every kind of option the commands bind.
                 double lr = 1e-4, ratio = 0;
                 int64_t steps = 1, seed = 0;
                 std::string name, targets = "q_proj", mode = "fast";
                 bool packing = false;
                 app::OptionTable table("hyft fuzz", "fuzz");
                 table.value("", "lr", "", lr);
                 table.value("", "steps", "", steps);
                 table.value("", "seed", "", seed);
                 table.value("", "ratio", "", ratio);
                 table.optional("", "name", "", name);
                 table.value("", "targets", "", targets);
                 table.value("", "mode", "", mode);
                 table.flag("", "packing", "", packing);
                 table.alias("learning-rate", "lr");
                 table.at_least("steps", steps, int64_t(0));
                 table.within("ratio", ratio, 0.0, 1.0, false);
                 std::string program = "hyft fuzz", flag = "--config", file = path;
                 char* argv[] = {program.data(), flag.data(), file.data(), nullptr};
                 return app::parse_or_help(table, 3, argv);
               },
               /*message_names_file=*/false});  // a bad value is named by its option (and key)

  t.push_back({"adapter_config", "adapter_config.json",
               with(json_words, {"peft_type", "LORA", "r", "lora_alpha", "target_modules", "modules_to_save",
                                 "use_rslora", "use_dora", "lora_dropout", "rank_pattern", "alpha_pattern",
                                 "layers_to_transform", "q_proj", "lm_head", "embed_tokens", "fan_in_fan_out",
                                 "bias", "all"}),
               [](const std::string& work) {
                 // The weights beside every mutated config: one q_proj pair of rank 2.
                 const std::string dir = work + "/input";
                 fs::create_directories(dir);
                 io::save_safetensors(dir + "/adapter_model.safetensors",
                                      {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                                        at::ones({2, 16})},
                                       {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
                                        at::zeros({16, 2})}});
                 return std::vector<std::string>{kAdapterConfig};
               },
               [](const std::string& path) {
                 (void)adapters::read_peft_adapter(fs::path(path).parent_path().string());
                 return true;
               }});

  t.push_back({"data_cache", "entry.bin", {},
               [](const std::string& work) {
                 data::Dataset d;
                 d.max_seq_len = 16;
                 for (int i = 0; i < 3; ++i) {
                   data::Example ex;
                   ex.input_ids = {1, 5 + i, 7, 2};
                   ex.labels = {-100, 5 + i, 7, 2};
                   ex.weight = 1.0 + i;
                   if (i == 1) ex.label = "yes";
                   ex.line = i + 1;
                   d.examples.push_back(ex);
                 }
                 d.stats.records_by_kind["text"] = 3;
                 const std::string path = work + "/seed.bin";
                 data::write_dataset_cache(path, d);
                 g_cached = d;
                 return std::vector<std::string>{read_file(path)};
               },
               [](const std::string& path) {
                 // A damaged entry must be set aside (nullopt); one that reads must hold what was written.
                 const auto d = data::read_dataset_cache(path);
                 if (d && !same_examples(*d, g_cached))
                   throw std::runtime_error("a damaged cache entry was trusted: it reads as other examples");
                 return d.has_value();
               }});
  return t;
}

// ----------------------------------------------------------- mutation ------------

class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<std::string>* dictionary) : rng_(seed), dict_(dictionary) {}

  std::string mutate(std::string s, const std::vector<std::string>& corpus) {
    const int rounds = 1 + int(below(4));
    for (int i = 0; i < rounds; ++i) once(s, corpus);
    if (s.size() > (1u << 20)) s.resize(1u << 20);
    return s;
  }

 private:
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  void once(std::string& s, const std::vector<std::string>& corpus) {
    static const uint64_t kInteresting[] = {0,          1,          7,          8,          0x7f,      0x80,
                                            0xff,       0x7fff,     0xffff,     0x7fffffff, 0xffffffff, 1ull << 32,
                                            1ull << 62, 1ull << 63, ~0ull,      ~0ull - 7};
    const size_t n = s.size();
    switch (below(9)) {
      case 0:  // flip a bit
        if (n) s[below(n)] ^= char(1u << below(8));
        break;
      case 1:  // an interesting byte
        if (n) s[below(n)] = char("\x00\x01\x7f\x80\xff\"{}[],:\n\\"[below(14)]);
        break;
      case 2: {  // an interesting little-endian integer over 8 bytes (binary formats; offset 0 is safetensors' length)
        if (n < 8) break;
        const uint64_t v = below(3) == 0 ? uint64_t(n) + below(64) - 32 : kInteresting[below(16)];
        const size_t at = below(4) == 0 ? 0 : below(n - 7);
        std::memcpy(&s[at], &v, 8);
        break;
      }
      case 3:  // insert a token of the format
        if (dict_ && !dict_->empty()) s.insert(below(n + 1), (*dict_)[below(dict_->size())]);
        break;
      case 4: {  // insert random bytes
        std::string r(1 + below(8), '\0');
        for (auto& c : r) c = char(below(256));
        s.insert(below(n + 1), r);
        break;
      }
      case 5:  // delete a range
        if (n) {
          const size_t at = below(n);
          s.erase(at, 1 + below(std::min<size_t>(n - at, 32)));
        }
        break;
      case 6:  // duplicate a range (repetition: deep nesting, long lines)
        if (n) {
          const size_t at = below(n), len = 1 + below(std::min<size_t>(n - at, 64));
          const std::string piece = s.substr(at, len);
          std::string rep;
          for (uint64_t k = 1 + below(below(2) ? 4 : 256); k > 0; --k) rep += piece;
          s.insert(at, rep);
        }
        break;
      case 7:  // splice with another input
        if (!corpus.empty()) {
          const std::string& o = corpus[below(corpus.size())];
          const size_t cut = below(n + 1), from = below(o.size() + 1);
          s = s.substr(0, cut) + o.substr(from);
        }
        break;
      case 8:  // truncate
        if (n) s.resize(below(n));
        break;
    }
  }

  std::mt19937_64 rng_;
  const std::vector<std::string>* dict_;
};

// ---------------------------------------------------------- the loop -------------

// Text a library puts in its own messages; hyft's must not carry it.
const char* kRawLibraryText[] = {"json.exception", "yaml-cpp", "YAML::", "bad conversion", "basic_string",
                                 "vector::",       "std::",    "stoi",   "stod",           "cxxopts",
                                 "c10::",          "what():",  "Exception raised from", "bad_alloc",
                                 "out_of_range",   "invalid_argument", "bad_optional_access"};

struct Tally {
  int64_t inputs = 0, accepted = 0, refused = 0, failures = 0;
};

std::string hex_name(const std::string& bytes) {
  const uint64_t h = std::hash<std::string>{}(bytes);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Feeds `bytes` to the target; false (after keeping the input) on a failure.
bool try_input(const Target& t, const std::string& bytes, const std::string& input_path, const std::string& crash_dir,
               Tally& tally, bool& accepted) {
  write_file(input_path, bytes);
  const std::string keep = crash_dir + "/" + t.name + "-" + hex_name(bytes) + ".bin";
  std::snprintf(g_input, sizeof g_input, "%s", input_path.c_str());
  std::snprintf(g_keep, sizeof g_keep, "%s", keep.c_str());
  ++tally.inputs;
  accepted = false;
  std::string problem;
  alarm(10);
  try {
    accepted = t.read(input_path);
    ++(accepted ? tally.accepted : tally.refused);  // false: detected and set aside (a damaged cache entry)
  } catch (const UserError& e) {
    const std::string msg = e.what();
    for (const char* raw : kRawLibraryText)
      if (msg.find(raw) != std::string::npos) problem = std::string("raw library text '") + raw + "' in: " + msg;
    if (problem.empty() && t.message_names_file && msg.find(input_path) == std::string::npos &&
        msg.find(fs::path(input_path).parent_path().string()) == std::string::npos)
      problem = "the refusal does not name the file: " + msg;
    if (problem.empty()) ++tally.refused;
  } catch (const c10::Error& e) {
    problem = std::string("LibTorch error instead of a refusal: ") + e.what_without_backtrace();
  } catch (const std::exception& e) {
    problem = std::string("exception that is not a UserError: ") + e.what();
  }
  alarm(0);
  if (problem.empty()) return true;
  ++tally.failures;
  fs::create_directories(crash_dir);
  write_file(keep, bytes);
  dprintf(g_err, "fuzz %s: FAILURE: %s\n  input kept at %s\n", t.name, problem.c_str(), keep.c_str());
  return false;
}

int usage() {
  std::fprintf(stderr,
               "usage: hyft_fuzz --target NAME --seconds S --crash-dir DIR [--seed N] [--regressions DIR] "
               "[--tokenizer FILE] [--max-inputs N]\n  targets: safetensors config jsonl yaml adapter_config "
               "data_cache\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string target_name, crash_dir, regressions;
  double seconds = 10;
  uint64_t seed = 1;
  int64_t max_inputs = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--target") target_name = v;
    else if (k == "--seconds") seconds = std::stod(v);
    else if (k == "--crash-dir") crash_dir = v;
    else if (k == "--seed") seed = std::stoull(v);
    else if (k == "--regressions") regressions = v;
    else if (k == "--tokenizer") g_tokenizer_path = v;
    else if (k == "--max-inputs") max_inputs = std::stoll(v);
    else return usage();
  }
  if (target_name.empty() || crash_dir.empty()) return usage();
  const auto targets = make_targets();
  const Target* target = nullptr;
  for (const auto& t : targets)
    if (target_name == t.name) target = &t;
  if (!target) return usage();

  install_fatal_handlers();
  g_err = dup(2);
  const int null_fd = open("/dev/null", O_WRONLY);
  if (null_fd >= 0) dup2(null_fd, 2);
  const std::string work = (fs::temp_directory_path() / ("hyft-fuzz-" + target_name + "-" + std::to_string(getpid()))).string();
  fs::create_directories(work + "/input");
  const std::string input_path = work + "/input/" + target->file_name;
  // Refusals print warnings (skipped lines, rebuilt caches) on stderr: keep them out of the log.
  std::vector<std::string> corpus = target->seeds(work);
  Tally tally;
  bool accepted = false, ok = true;

  // The seeds must read; the kept regressions must be handled cleanly.
  for (const auto& s : corpus) {
    ok &= try_input(*target, s, input_path, crash_dir, tally, accepted);
    if (!accepted) {
      dprintf(g_err, "fuzz %s: a seed input was not accepted\n", target->name);
      ok = false;
    }
  }
  int64_t replayed = 0;
  const fs::path kept = fs::path(regressions) / target->name;
  if (!regressions.empty() && fs::is_directory(kept))
    for (const auto& entry : fs::directory_iterator(kept)) {
      ok &= try_input(*target, read_file(entry.path().string()), input_path, crash_dir, tally, accepted);
      ++replayed;
    }

  Mutator mutator(seed, &target->dictionary);
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  std::vector<std::string> grown = corpus;  // accepted mutants join the pool: inputs that stay deep in the format
  std::mt19937_64 pick(seed ^ 0x9e3779b97f4a7c15ull);
  while (elapsed() < seconds && (max_inputs < 0 || tally.inputs < max_inputs)) {
    const std::string& base = grown[pick() % grown.size()];
    const std::string input = mutator.mutate(base, grown);
    ok &= try_input(*target, input, input_path, crash_dir, tally, accepted);
    if (accepted && grown.size() < 512) grown.push_back(input);
  }
  io::remove_tree(work);  // (std::filesystem::remove_all resolves into libtorch.so and crashes there)
  std::printf("fuzz %s: %lld inputs in %.1f s (%lld kept regressions replayed): %lld read, %lld refused cleanly, "
              "%lld failures\n",
              target->name, static_cast<long long>(tally.inputs), elapsed(), static_cast<long long>(replayed),
              static_cast<long long>(tally.accepted), static_cast<long long>(tally.refused),
              static_cast<long long>(tally.failures));
  return ok ? 0 : 1;
}
