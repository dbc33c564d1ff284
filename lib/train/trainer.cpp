#include "train/trainer.h"

#include "common/error.h"
#include "common/gpu_memory.h"
#include "common/interrupt.h"
#include "data/batch.h"
#include "data/packing.h"
#include "distributed/communicator.h"
#include "distributed/gradient_reducer.h"
#include "eval/evaluate.h"
#include "io/atomic_file.h"
#include "model/causal_lm_loss.h"
#include "train/activation_checkpoint.h"
#include "train/autocast.h"
#include "train/checkpoint.h"
#include "train/rng_state.h"
#include "train/tensorboard.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

namespace hyft::train {

namespace fs = std::filesystem;

namespace {

// metrics.jsonl without the rows logged after `step` (a run killed after its last
// checkpoint logged steps the resumed run repeats).
void truncate_metrics(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() > step) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  in.close();
  if (dropped) io::write_file_atomic(path, kept);
}

// A rank's generator state in a checkpoint: "cpu" and "cuda" for rank 0 (as one
// process saves them), "cpu.rank1", ... for the others.
std::string rng_key(const std::string& kind, int64_t rank) {
  return rank == 0 ? kind : kind + ".rank" + std::to_string(rank);
}

std::string hms(double seconds) {
  const auto s = int64_t(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                (long long)(s % 60));
  return buf;
}

}  // namespace

Trainer::Trainer(model::LlamaForCausalLMImpl& model, std::vector<NamedParameter> trainable,
                 const data::Dataset& train, const std::vector<data::Example>& eval, TrainerOptions options,
                 TrainerHooks hooks, dist::Communicator* comm)
    : model_(model),
      train_(train.examples),
      row_len_(train.max_seq_len),
      eval_(eval),
      o_(std::move(options)),
      hooks_(std::move(hooks)),
      optimizer_(std::move(trainable), o_.adamw),
      scaler_(o_.scaler, o_.device),
      sampler_(train.examples, o_.sampling),
      comm_(comm && comm->world() > 1 ? comm : nullptr) {
  HYFT_CHECK(o_.micro_batch > 0 && o_.grad_accum > 0, "--micro-batch and --grad-accum must be positive");
  TORCH_INTERNAL_ASSERT(!comm_ || (o_.sampling.rank == comm_->rank() && o_.sampling.world == comm_->world()),
                        "trainer: the sampler's rank and world must be the communicator's");
  if (comm_) {
    // Every rank starts from rank 0's weights, then sums gradients with the others.
    std::vector<at::Tensor> params;
    for (const auto& p : optimizer_.parameters()) params.push_back(p.param);
    {
      at::NoGradGuard no_grad;
      comm_->broadcast(params);
    }
    reducer_ = std::make_unique<dist::GradientReducer>(*comm_, params);
  }
  const int64_t per_step = o_.micro_batch * o_.grad_accum;
  if (o_.max_steps > 0) {
    total_steps_ = o_.max_steps;
  } else {
    int64_t per_epoch = (sampler_.epoch_length() + per_step - 1) / per_step;
    if (o_.packing) {
      int64_t tokens = 0;
      for (const auto& ex : train_) tokens += int64_t(ex.input_ids.size());
      tokens /= o_.sampling.world;
      per_epoch = (tokens + row_len_ * per_step - 1) / (row_len_ * per_step);
    }
    total_steps_ = std::max<int64_t>(1, per_epoch) * std::max<int64_t>(1, o_.epochs);
  }
  model_.model->layer_runner = model::LlamaModelImpl::LayerRunner();
  if (o_.checkpointing != Checkpointing::Off)
    model_.model->layer_runner = [mode = o_.checkpointing](model::LlamaDecoderLayerImpl& layer, const at::Tensor& x,
                                                           const model::ForwardContext& ctx) {
      return checkpoints_layer(mode, layer.self_attn->layer_index) ? checkpointed_layer(layer, x, ctx)
                                                                   : layer.forward(x, ctx);
    };
}

Trainer::~Trainer() = default;

bool Trainer::is_main() const { return !comm_ || comm_->is_main(); }

std::vector<const data::Example*> Trainer::draw_examples(int64_t count) {
  std::vector<const data::Example*> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(&train_[size_t(sampler_.next())]);
  return out;
}

StepStats Trainer::train_step(int64_t step, PhaseTimes* phases) {
  // Phase boundaries: only timed (and synchronised) when asked.
  auto mark = [&, last = std::chrono::steady_clock::now()](double* into) mutable {
    if (!phases) return;
    synchronize(o_.device);
    const auto now = std::chrono::steady_clock::now();
    *into += std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
  };
  model_.train();
  // All micro-batches of the step first: the loss is normalised by their targets.
  std::vector<data::Batch> batches;
  int64_t targets = 0;
  for (int64_t m = 0; m < o_.grad_accum; ++m) {
    if (!o_.packing) {
      batches.push_back(data::make_micro_batch(draw_examples(o_.micro_batch), o_.device, o_.padding_free));
    } else {
      // Fill micro_batch rows, first fit: the examples waiting from earlier steps
      // first (oldest first), then new draws; one that fits no row waits for the next
      // micro-batch. Drawing goes on past the first that does not fit, so shorter
      // ones fill the gaps (data::kPackLookahead misses, at most data::kPackMaxWaiting
      // waiting). Nothing is dropped; the waiting list is in the checkpoint.
      data::RowPacker packer(row_len_, o_.micro_batch);
      std::vector<int64_t> waiting;
      for (const int64_t idx : pending_)
        if (!packer.add(&train_[size_t(idx)])) waiting.push_back(idx);
      for (int64_t misses = 0; misses < data::kPackLookahead && int64_t(waiting.size()) < data::kPackMaxWaiting;) {
        const int64_t idx = sampler_.next();
        if (!packer.add(&train_[size_t(idx)])) {
          waiting.push_back(idx);
          ++misses;
        }
      }
      pending_ = std::move(waiting);
      batches.push_back(data::make_packed_batch(packer.rows(), o_.device));
    }
    targets += batches.back().targets;
  }
  StepStats st;
  if (comm_) targets = int64_t(comm_->sum({double(targets)})[0]);  // the global batch's targets
  const double denom = double(std::max<int64_t>(1, targets));
  const bool fp16 = o_.precision == at::kHalf;
  double nll_sum = 0.0;
  for (auto& b : batches) {
    if (reducer_) reducer_->begin_micro_batch(&b == &batches.back());
    at::Tensor nll;
    {
      AutocastGuard autocast(o_.device.type(), o_.precision);
      const at::Tensor hidden = model_.hidden_states(b.input_ids, b.layout);
      nll = model::target_nll(model_, hidden, b.labels).sum;
    }
    at::Tensor loss = nll / denom;
    if (phases) mark(&phases->forward_ms);
    (fp16 ? scaler_.scale_loss(loss) : loss).backward();
    if (phases) mark(&phases->backward_ms);
    nll_sum += nll.item<double>();
    st.tokens += b.tokens;
  }
  if (reducer_) {
    reducer_->finish();  // every rank now holds the summed gradients
    const auto sums = comm_->sum({nll_sum, double(st.tokens)});
    nll_sum = sums[0];
    st.tokens = int64_t(sums[1]);
  }
  st.loss = nll_sum / denom;
  st.lr = learning_rate(o_.schedule, o_.adamw.lr, step, o_.warmup_steps, total_steps_);

  std::vector<at::Tensor> grads;
  for (const auto& p : optimizer_.parameters())
    if (p.param.grad().defined()) grads.push_back(p.param.grad());
  bool finite = std::isfinite(st.loss);
  if (fp16) finite = scaler_.unscale_and_check(grads) && finite;
  if (finite && !grads.empty()) {
    at::NoGradGuard no_grad;
    const auto norms = at::_foreach_norm(grads, 2);
    st.grad_norm = at::stack(norms).norm().item<double>();
    finite = std::isfinite(st.grad_norm);
    if (finite && o_.max_grad_norm > 0 && st.grad_norm > o_.max_grad_norm)
      at::_foreach_mul_(grads, o_.max_grad_norm / (st.grad_norm + 1e-6));
  }
  if (finite) {
    optimizer_.step(st.lr);
    consecutive_nonfinite_ = 0;
  } else {
    st.skipped = true;
    if (!fp16 && ++consecutive_nonfinite_ >= o_.max_nonfinite_steps) {
      const auto good = latest_checkpoint(o_.output_dir);
      throw std::runtime_error(
          "the loss was not finite (" + std::to_string(st.loss) + ") for " + std::to_string(consecutive_nonfinite_) +
          " steps in a row, at step " + std::to_string(step + 1) + "; stopping. Lower --lr, raise --warmup-steps, " +
          "check the data (hyft data stats)" +
          (o_.precision == at::kBFloat16 ? ", or try --precision fp32" : "") + ". " +
          (good ? "The newest checkpoint, saved after finite steps only, is " + *good + " (--resume PATH)"
                : std::string("No checkpoint was saved before the failure")));
    }
  }
  if (reducer_) reducer_->zero();  // the gradients stay views into the buckets
  else optimizer_.zero_grad();
  if (fp16) scaler_.update();
  if (phases) mark(&phases->optimizer_ms);
  return st;
}

double Trainer::evaluate_held_out() {
  AutocastGuard autocast(o_.device.type(), o_.precision);
  eval::EvalOptions eo;
  eo.micro_batch = o_.micro_batch;
  if (!comm_) return eval::evaluate(model_, eval_, eo).loss;
  std::vector<data::Example> share;  // every world-th example, from this rank's
  for (size_t i = size_t(comm_->rank()); i < eval_.size(); i += size_t(comm_->world())) share.push_back(eval_[i]);
  const auto r = share.empty() ? eval::EvalResult() : eval::evaluate(model_, share, eo);
  const auto sums = comm_->sum({r.tokens ? r.loss * double(r.tokens) : 0.0, double(r.tokens)});
  return sums[1] > 0 ? sums[0] / sums[1] : std::nan("");
}

// What each rank keeps of its own: where it is in the draws, what it drew but has
// not placed, its random generators.
nlohmann::json Trainer::rank_state() const {
  auto bytes = [](const at::Tensor& t) {
    const at::Tensor c = t.contiguous().to(at::kByte);
    return nlohmann::json::binary(std::vector<uint8_t>(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel()));
  };
  nlohmann::json j = {{"position", sampler_.state().position}, {"pending", pending_},
                      {"rng_cpu", bytes(get_rng_state(at::kCPU))}};
  if (o_.device.is_cuda()) j["rng_cuda"] = bytes(get_rng_state(o_.device));
  return j;
}

void Trainer::save(int64_t step, double best_eval) {
  std::vector<nlohmann::json> ranks{rank_state()};
  if (comm_) {  // rank 0 writes what every rank keeps
    const auto all = comm_->all_gather_bytes("checkpoint/" + std::to_string(exchanges_++),
                                             nlohmann::json::to_cbor(ranks[0]));
    ranks.clear();
    for (const auto& b : all) ranks.push_back(nlohmann::json::from_cbor(b));
  }
  if (is_main()) {
    CheckpointData c;
    c.step = step;
    for (const auto& p : optimizer_.parameters()) c.trainable.emplace_back(p.name, p.param.detach());
    c.optimizer = optimizer_.state();
    nlohmann::json draws = nlohmann::json::array();
    for (size_t r = 0; r < ranks.size(); ++r) {
      for (const char* kind : {"cpu", "cuda"}) {
        const std::string key = std::string("rng_") + kind;
        if (!ranks[r].contains(key)) continue;
        auto bytes = ranks[r][key].get_binary();
        c.rng.emplace_back(rng_key(kind, int64_t(r)),
                           at::tensor(std::vector<uint8_t>(bytes.begin(), bytes.end()), at::kByte));
      }
      draws.push_back({{"position", ranks[r]["position"]}, {"pending", ranks[r]["pending"]}});
    }
    c.state = {{"ranks", draws},  // one entry a rank: the world size is their count
               {"scaler", scaler_.state()},
               {"best_eval_loss", std::isnan(best_eval) ? nlohmann::json(nullptr) : nlohmann::json(best_eval)},
               {"consecutive_nonfinite", consecutive_nonfinite_},
               {"tokens_seen", tokens_seen_}};
    c.config = o_.config;
    save_checkpoint(o_.output_dir, c, [&](const std::string& dir) { hooks_.save(dir + "/" + hooks_.final_name); },
                    o_.keep_last);
  }
  if (comm_) comm_->barrier();  // no rank goes on (or exits) before the checkpoint is whole
}

int64_t Trainer::restore(const std::string& dir, double& best_eval) {
  const LoadedCheckpoint c = load_checkpoint(dir);
  if (hooks_.check_resume) hooks_.check_resume(c.config, dir);
  at::NoGradGuard no_grad;
  for (const auto& p : optimizer_.parameters()) {
    const auto it = c.trainable.find(p.name);
    HYFT_CHECK(it != c.trainable.end() && it->second.sizes() == p.param.sizes(), dir, ": checkpoint has no '",
               p.name, "' of shape ", p.param.sizes(), "; it belongs to another run (other targets or rank?)");
    p.param.copy_(it->second);
  }
  optimizer_.load_state(c.optimizer, dir);
  const auto& s = c.state;
  // Each rank's draws; a checkpoint of another number of ranks is re-dealt.
  std::vector<data::RankDraws> saved;
  if (s.contains("ranks")) {
    for (const auto& r : s.at("ranks")) saved.push_back({r.at("position"), r.at("pending")});
  } else {  // one rank, saved as (epoch, offset) with one waiting example or a list
    data::RankDraws d;
    d.position = s.at("sampler_epoch").get<int64_t>() * int64_t(train_.size()) + s.at("sampler_offset").get<int64_t>();
    const auto& pending = s.at("pending");
    if (pending.is_array()) d.pending = pending.get<std::vector<int64_t>>();
    else if (pending.get<int64_t>() >= 0) d.pending.push_back(pending.get<int64_t>());
    saved.push_back(d);
  }
  const int64_t world = comm_ ? comm_->world() : 1, rank = comm_ ? comm_->rank() : 0;
  const auto draws = data::reshard_draws(saved, world, [&](int64_t p) { return sampler_.index_at(p); });
  sampler_.restore({draws[size_t(rank)].position});
  pending_ = draws[size_t(rank)].pending;
  // Generators: this rank's own when the world is the same, else rank 0's for rank
  // 0 and fresh streams (from the seed, rank and step) for the others.
  if (int64_t(saved.size()) == world || rank == 0) {
    set_rng_state(at::kCPU, c.rng.at(rng_key("cpu", rank)));
    if (o_.device.is_cuda() && c.rng.count(rng_key("cuda", rank)))
      set_rng_state(o_.device, c.rng.at(rng_key("cuda", rank)));
  } else {
    at::manual_seed(o_.sampling.seed + uint64_t(rank) * 1000003u + uint64_t(c.step));
  }
  if (int64_t(saved.size()) != world && is_main())
    std::printf("resuming a run saved by %zu process(es) with %lld: the draws continue where they stopped\n",
                saved.size(), static_cast<long long>(world));
  scaler_.load_state(s.at("scaler").get<std::vector<double>>());
  consecutive_nonfinite_ = s.at("consecutive_nonfinite").get<int64_t>();
  tokens_seen_ = s.value("tokens_seen", int64_t(0));
  best_eval = s.at("best_eval_loss").is_null() ? std::nan("") : s.at("best_eval_loss").get<double>();
  return c.step;
}

TrainResult Trainer::run() {
  fs::create_directories(o_.output_dir);
  const bool main = is_main();
  install_interrupt_handlers();  // already done by `hyft finetune`; here for library callers
  TrainResult result;
  double best_eval = std::nan("");
  int64_t start = 0;
  if (!o_.resume.empty()) {
    const auto dir = o_.resume == "latest" ? latest_checkpoint(o_.output_dir) : std::optional<std::string>(o_.resume);
    if (dir) {
      start = restore(*dir, best_eval);
      std::printf("resumed from %s (step %lld)\n", dir->c_str(), static_cast<long long>(start));
      if (start >= total_steps_) {
        std::printf("the run is already complete (step %lld of %lld); nothing left to train\n",
                    static_cast<long long>(start), static_cast<long long>(total_steps_));
        result.start_step = result.steps = start;
        return result;
      }
    } else {
      std::printf("no checkpoint under %s/checkpoints; starting from the beginning\n", o_.output_dir.c_str());
    }
  }
  if (start > 0 && main) truncate_metrics(o_.output_dir + "/metrics.jsonl", start);
  if (comm_) comm_->barrier();  // metrics.jsonl is whole before rank 0 appends to it
  // Rank 0 alone writes the logs; the others' streams stay closed.
  std::optional<EventWriter> events;
  std::ofstream metrics;
  if (main) {
    events.emplace(o_.output_dir);
    metrics.open(o_.output_dir + "/metrics.jsonl", std::ios::app);
  }
  // Tests: raise SIGTERM after that step (on the rank HYFT_TEST_SIGNAL_RANK only, when set).
  const char* signal_at = std::getenv("HYFT_TEST_SIGNAL_AT_STEP");
  const char* signal_rank = std::getenv("HYFT_TEST_SIGNAL_RANK");
  if (signal_rank && std::atoi(signal_rank) != o_.sampling.rank) signal_at = nullptr;
  const char* hang_at = std::getenv("HYFT_TEST_HANG_AT_STEP");  // tests: that rank stops answering
  if (signal_rank && std::atoi(signal_rank) != o_.sampling.rank) hang_at = nullptr;
  std::printf("training %lld steps: micro-batch %lld x accumulation %lld%s, %s, %s, gradient checkpointing %s\n",
              static_cast<long long>(total_steps_), static_cast<long long>(o_.micro_batch),
              static_cast<long long>(o_.grad_accum),
              comm_ ? (" x " + std::to_string(comm_->world()) + " processes (" + comm_->backend_name() + ")").c_str()
                    : "",
              o_.precision == at::kBFloat16 ? "bf16" : o_.precision == at::kHalf ? "fp16" : "fp32",
              o_.device.str().c_str(), checkpointing_name(o_.checkpointing));
  std::fflush(stdout);
  reset_peak_memory(o_.device);
  const auto t0 = std::chrono::steady_clock::now();
  double window_tokens = 0;
  auto window_start = t0;
  int64_t step = start, last_saved = start;
  result.start_step = result.steps = start;
  while (step < total_steps_) {
    // Between steps, the safe point; a signal to any rank stops them all here.
    if (const int sig = comm_ ? int(comm_->max(interrupt_signal())) : interrupt_signal()) {
      if (last_saved != step) save(step, best_eval);
      if (step > 0)
        std::printf("%s: saved a checkpoint at step %lld under %s/checkpoints; continue with --resume\n",
                    sig == SIGINT ? "interrupted" : "terminated", (long long)step, o_.output_dir.c_str());
      else
        std::printf("%s before the first step; nothing was trained\n", sig == SIGINT ? "interrupted" : "terminated");
      result.exit_code = 128 + sig;
      break;
    }
    StepStats st;
    try {
      st = train_step(step);
    } catch (const c10::OutOfMemoryError&) {
      throw std::runtime_error("out of GPU memory at micro-batch " + std::to_string(o_.micro_batch) +
                               ", max_seq_len " + std::to_string(row_len_) +
                               ": lower --micro-batch (and raise --grad-accum to keep the batch), add "
                               "--grad-checkpointing, or lower --max-seq-len");
    }
    ++step;
    result.steps = step;
    result.last_loss = st.loss;
    window_tokens += double(st.tokens);
    tokens_seen_ += st.tokens;

    const bool last = step == total_steps_;
    if (step % std::max<int64_t>(1, o_.log_every) == 0 || last || step == start + 1) {
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - window_start).count();
      const double tps = dt > 0 ? window_tokens / dt : 0.0;
      const double per_step = std::chrono::duration<double>(now - t0).count() / double(step - start);
      const double mem = peak_memory_gib(o_.device);
      std::printf("step %lld/%lld | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | ETA %s%s", (long long)step,
                  (long long)total_steps_, st.loss, st.lr, st.grad_norm, tps,
                  hms(per_step * double(total_steps_ - step)).c_str(), st.skipped ? " | step skipped" : "");
      if (o_.device.is_cuda()) std::printf(" | mem %.2f GiB", mem);
      if (o_.precision == at::kHalf) std::printf(" | scale %.0f", scaler_.scale());
      std::printf("\n");
      std::fflush(stdout);
      const double epoch = sampler_.epoch();
      nlohmann::json m = {{"step", step}, {"epoch", epoch}, {"loss", st.loss}, {"lr", st.lr},
                          {"grad_norm", st.grad_norm}, {"tokens_per_s", tps}, {"tokens_seen", tokens_seen_},
                          {"elapsed_s", std::chrono::duration<double>(now - t0).count()}, {"skipped", st.skipped},
                          {"peak_mem_gib", mem}};
      if (o_.precision == at::kHalf) {
        m["loss_scale"] = scaler_.scale();
        m["skipped_steps"] = scaler_.skipped_steps();
      }
      if (main) {
        metrics << m.dump() << "\n" << std::flush;
        events->scalar("train/loss", st.loss, step);
        events->scalar("train/lr", st.lr, step);
        events->scalar("train/grad_norm", st.grad_norm, step);
        events->scalar("train/tokens_per_s", tps, step);
        events->flush();
      }
      window_tokens = 0;
      window_start = now;
    }
    if (!eval_.empty() && ((o_.eval_every > 0 && step % o_.eval_every == 0) || last)) {
      const double loss = evaluate_held_out();
      const bool best = std::isnan(best_eval) || loss < best_eval;
      std::printf("eval step %lld | loss %.4f | perplexity %.3f%s\n", (long long)step, loss, std::exp(loss),
                  best ? (" | best so far, kept in best-" + hooks_.final_name + "/").c_str() : "");
      std::fflush(stdout);
      if (main) {
        metrics << nlohmann::json({{"step", step}, {"eval_loss", loss}, {"eval_perplexity", std::exp(loss)}}).dump()
                << "\n" << std::flush;
        events->scalar("eval/loss", loss, step);
        events->scalar("eval/perplexity", std::exp(loss), step);
        events->flush();
      }
      if (best) {
        best_eval = loss;
        if (main) hooks_.save(o_.output_dir + "/best-" + hooks_.final_name);
      }
    }
    if (o_.save_every > 0 && step % o_.save_every == 0 && !last) {
      if (consecutive_nonfinite_ == 0) {
        save(step, best_eval);
        last_saved = step;
      } else {  // a checkpoint is only kept after a finite step
        std::printf("not saving a checkpoint at step %lld: the last step's loss was not finite\n", (long long)step);
      }
    }
    if (signal_at && std::atoll(signal_at) == step) std::raise(SIGTERM);
    if (hang_at && std::atoll(hang_at) == step) std::this_thread::sleep_for(std::chrono::hours(1));
  }
  if (result.exit_code == 0) {
    if (main) hooks_.save(o_.output_dir + "/" + hooks_.final_name);
    if (o_.save_every > 0) save(step, best_eval);
    if (comm_) comm_->barrier();  // every rank exits after the outputs are whole
  }
  return result;
}

}  // namespace hyft::train
