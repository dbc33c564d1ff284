// Quantized weight formats against bitsandbytes' own (test/python/quant_reference.py):
// NF4 codes and absmax byte for byte (also double-quantized), the dequantized
// weights equal; INT8 row-wise
// codes and scales equal. Random and real-shaped weights, float32 and bf16. Then
// --quantize through the model: eval's loss equals transformers' with the same
// round trip, and QLoRA trains.
#include "support/catch.h"
#include "support/process.h"

#include "io/safetensors.h"
#include "quant/formats.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>

using namespace hyft;

TEST_CASE("NF4 and INT8 quantization equal bitsandbytes' byte for byte", "[quant]") {
  at::manual_seed(5);
  std::vector<std::pair<std::string, at::Tensor>> weights = {
      {"small", at::randn({64, 96})},
      {"odd_tail", at::randn({10, 100})},       // 1000 elements: a last block of 40
      {"wide", at::randn({256, 1024}) * 0.02},  // an initialised projection's scale
      {"bf16", (at::randn({128, 2048}) * 0.05).to(at::kBFloat16)},
      {"outliers", at::randn({32, 512}) * at::where(at::rand({32, 512}) < 0.01, 40.0, 1.0)},
  };
  weights.back().second.index_put_({0}, 0.0);  // an all-zero row (and blocks)
  const std::string dir = std::string(HYFT_FIXTURES) + "/tmp";
  const std::string in = dir + "/quant_in.safetensors", out = dir + "/quant_out.safetensors";
  io::save_safetensors(in, weights);
  const auto r = test::run_python(test::quote(std::string(HYFT_SOURCE_DIR) + "/test/python/quant_reference.py") +
                                  " " + test::quote(in) + " " + test::quote(out));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const io::SafetensorsFile ref(out);
  // bitsandbytes' dynamic map, as hyft builds it.
  const double map_diff = (quant::dynamic_map(at::kCPU) - ref.tensor("dynamic_map")).abs().max().item<double>();
  std::printf("dynamic map: max |diff| %.3g over 256 values\n", map_diff);
  REQUIRE(map_diff == 0.0);
  for (const auto& [name, w] : weights) {
    const quant::Nf4Weight q = quant::quantize_nf4(w);
    const at::Tensor codes = ref.tensor(name + ".nf4");
    const int64_t differing = (q.packed != codes).sum().item<int64_t>();
    const double absmax_diff = (q.absmax - ref.tensor(name + ".nf4_absmax")).abs().max().item<double>();
    const double dequant_diff =
        (quant::dequantize_nf4(q, at::kFloat) - ref.tensor(name + ".nf4_dequant").view({w.size(0), w.size(1)}))
            .abs().max().item<double>();
    // Double quantization (compress_statistics=True): codes, the absmax's 8-bit codes,
    // their block absmax and offset, and the dequantized weight. bitsandbytes' CPU
    // kernel for the 8-bit codes searches approximately and sometimes takes a farther
    // code (its default backend and its CUDA kernel take the nearest, as hyft does):
    // where the absmax codes differ, hyft's must be at least as near.
    const quant::Nf4Weight dq = quant::quantize_nf4(w, 64, /*double_quant=*/true);
    const int64_t dq_differing = (dq.packed != ref.tensor(name + ".nf4dq")).sum().item<int64_t>();
    const at::Tensor theirs = ref.tensor(name + ".nf4dq_qabsmax");
    const at::Tensor differ = dq.absmax_codes != theirs;
    const int64_t qabsmax_differing = differ.sum().item<int64_t>();
    const double absmax2_diff = (dq.absmax2 - ref.tensor(name + ".nf4dq_absmax2")).abs().max().item<double>();
    const double offset_diff = std::abs(double(dq.offset) - ref.tensor(name + ".nf4dq_offset")[0].item<double>());
    const at::Tensor map = quant::dynamic_map(at::kCPU);
    const int64_t nb = q.absmax.numel();  // the value each absmax code stands for: (absmax - offset) / its block's absmax2
    const at::Tensor x = at::clamp((q.absmax - dq.offset) /
                                       dq.absmax2.repeat_interleave(quant::kAbsmaxBlock).narrow(0, 0, nb),
                                   -1.0, 1.0);
    const at::Tensor ours_d = (x - map.index_select(0, dq.absmax_codes.to(at::kLong))).abs();
    const at::Tensor theirs_d = (x - map.index_select(0, theirs.to(at::kLong))).abs();
    const bool ours_nearer = (ours_d <= theirs_d + 1e-7).all().item<bool>();
    // The dequantized weights where the absmax codes agree.
    const at::Tensor same_block = (~differ).repeat_interleave(64).narrow(0, 0, w.numel()).view({w.size(0), w.size(1)});
    const double dq_dequant_diff = ((quant::dequantize_nf4(dq, at::kFloat) -
                                     ref.tensor(name + ".nf4dq_dequant").view({w.size(0), w.size(1)})) *
                                    same_block)
                                       .abs().max().item<double>();
    std::printf("quant %-9s double-quantized NF4: %lld codes differ; %lld of %lld absmax codes differ (hyft's the "
                "nearer: %s); absmax2 |diff| %.3g, offset |diff| %.3g, dequantized |diff| %.3g\n",
                name.c_str(), (long long)dq_differing, (long long)qabsmax_differing, (long long)nb,
                ours_nearer ? "yes" : "NO", absmax2_diff, offset_diff, dq_dequant_diff);
    REQUIRE(dq_differing == 0);
    REQUIRE(ours_nearer);
    REQUIRE(qabsmax_differing * 100 <= nb);
    REQUIRE(absmax2_diff == 0.0);
    REQUIRE(offset_diff == 0.0);
    REQUIRE(dq_dequant_diff == 0.0);
    const quant::Int8Weight i8 = quant::quantize_int8(w.to(at::kHalf));
    const int64_t int8_differing = (i8.q != ref.tensor(name + ".int8").view({w.size(0), w.size(1)})).sum().item<int64_t>();
    const double int8_scale_diff = (i8.absmax - ref.tensor(name + ".int8_absmax")).abs().max().item<double>();
    std::printf("quant %-9s %5lld x %-5lld NF4: %lld of %lld bytes differ, absmax max |diff| %.3g, dequantized max "
                "|diff| %.3g; INT8: %lld codes differ, absmax max |diff| %.3g\n",
                name.c_str(), (long long)w.size(0), (long long)w.size(1), (long long)differing,
                (long long)q.packed.numel(), absmax_diff, dequant_diff, (long long)int8_differing, int8_scale_diff);
    INFO(name);
    REQUIRE(codes.numel() == q.packed.numel());
    REQUIRE(differing == 0);
    REQUIRE(absmax_diff == 0.0);
    REQUIRE(dequant_diff == 0.0);
    REQUIRE(int8_differing == 0);
    REQUIRE(int8_scale_diff == 0.0);
    // Dequantized INT8 is within half a step of the weight.
    const at::Tensor err = (quant::dequantize_int8(i8, at::kFloat) - w.to(at::kHalf).to(at::kFloat)).abs();
    REQUIRE((err <= (i8.absmax / 127.0 * 0.5 + 1e-6).unsqueeze(1)).all().item<bool>());
  }
}

TEST_CASE("INT4: codes are the nearest step of each block's affine grid", "[quant]") {
  at::manual_seed(7);
  for (const at::Tensor& w : {at::randn({64, 96}), at::randn({10, 100}) * 0.02, (at::randn({32, 256}) * 0.05).to(at::kBFloat16),
                              at::zeros({4, 64})}) {
    const quant::Int4Weight q = quant::quantize_int4(w);
    const int64_t n = w.numel(), blocks = (n + 63) / 64;
    REQUIRE(q.packed.numel() == n / 2);
    REQUIRE(q.scale.numel() == blocks);
    const at::Tensor dq = quant::dequantize_int4(q, at::kFloat).reshape(-1);
    const at::Tensor flat = w.to(at::kFloat).reshape(-1);
    double worst = 0;  // |dequantized - w| in units of the block's step, at most 1/2 (+ float16 rounding)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t len = std::min<int64_t>(64, n - b * 64);
      const at::Tensor x = flat.narrow(0, b * 64, len), y = dq.narrow(0, b * 64, len);
      const double lo = x.min().item<double>(), hi = x.max().item<double>();
      const double s = q.scale[b].item<double>(), m = q.minimum[b].item<double>();
      REQUIRE(std::abs(m - lo) <= std::abs(lo) * 1e-3 + 1e-7);         // float16 of the minimum
      REQUIRE(std::abs(s - (hi - lo) / 15) <= (hi - lo) / 15 * 1e-3 + 1e-7);  // float16 of the scale
      if (s == 0) {
        REQUIRE((y == m).all().item<bool>());
        continue;
      }
      // Every value is code * s + m for a code in 0..15, and the nearest such value to x.
      const at::Tensor codes = ((y.to(at::kDouble) - m) / s).round();
      REQUIRE(((codes >= 0) & (codes <= 15)).all().item<bool>());
      const at::Tensor nearest = ((x.to(at::kDouble) - m) / s).round().clamp(0, 15);
      REQUIRE((codes == nearest).all().item<bool>());
      worst = std::max(worst, ((y.to(at::kDouble) - x.to(at::kDouble)).abs().max().item<double>()) / s);
    }
    std::printf("int4 %lld x %lld: largest error %.3f of a step\n", (long long)w.size(0), (long long)w.size(1), worst);
    REQUIRE(worst <= 0.5 + 1e-2);
  }
}

TEST_CASE("--quantize: eval's loss equals transformers over bitsandbytes' round trip; QLoRA trains", "[quant]") {
  const std::string fx = std::string(HYFT_FIXTURES) + "/llama/";
  const std::string script = std::string(HYFT_SOURCE_DIR) + "/test/python/quant_reference.py";
  for (const char* name : {"mha", "gqa_tied_linear", "llama3_bias_headdim"}) {
    for (const char* format : {"nf4", "nf4-dq", "int8", "int4"}) {
      const std::string model = fx + name + "/model", data = fx + name + "/data.jsonl";
      const auto ours = test::run_hyft("eval --model " + test::quote(model) + " --data " + test::quote(data) +
                                       " --quantize " + format + " --json --device cpu --precision fp32");
      INFO(name << " " << format << ": " << ours.err);
      REQUIRE(ours.exit_code == 0);
      const auto theirs = test::run_python(test::quote(script) + " hf-eval " + test::quote(model) + " " +
                                           test::quote(data) + " " + format);
      INFO(theirs.err);
      REQUIRE(theirs.exit_code == 0);
      const double a = nlohmann::json::parse(ours.out)["loss"].get<double>();
      const double b = nlohmann::json::parse(theirs.out)["loss"].get<double>();
      const auto dense = test::run_hyft("eval --model " + test::quote(model) + " --data " + test::quote(data) +
                                        " --json --device cpu --precision fp32");
      const double d = nlohmann::json::parse(dense.out)["loss"].get<double>();
      std::printf("quantized eval %-20s %-4s: loss %.6f, reference %.6f (rel %.2g); unquantized %.6f\n", name, format,
                  a, b, std::abs(a - b) / b, d);
      REQUIRE(std::abs(a - b) / b < 1e-5);
    }
  }
  // QLoRA: an adapter over the NF4 base trains (the loss falls) and saves as usual.
  const std::string out = std::string(HYFT_FIXTURES) + "/tmp/qlora";
  const auto r = test::run_hyft("finetune --model " + test::quote(fx + "mha/model") + " --train " +
                                test::quote(fx + "mha/data.jsonl") + " --output " + test::quote(out) +
                                " --overwrite --quantize nf4 --max-steps 30 --lr 1e-2 --micro-batch 4 --targets all "
                                "--log-every 10 --device cpu --precision fp32");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::ifstream metrics(out + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(metrics, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  REQUIRE(losses.size() >= 2);
  std::printf("QLoRA (nf4) on mha: loss %.4f -> %.4f over 30 steps\n", losses.front(), losses.back());
  REQUIRE(losses.back() < losses.front());
  REQUIRE(std::ifstream(out + "/adapter/adapter_model.safetensors").good());
  // export --quantize merges over the quantized base: the merged folder's loss equals
  // the quantized base + adapter's.
  const std::string merged = out + "-merged";
  const auto e = test::run_hyft("export --model " + test::quote(fx + "mha/model") + " --adapter " +
                                test::quote(out + "/adapter") + " --output " + test::quote(merged) +
                                " --quantize nf4 --dtype fp32 --force");
  INFO(e.out << e.err);
  REQUIRE(e.exit_code == 0);
  auto loss_of = [&](const std::string& args) {
    const auto r = test::run_hyft("eval " + args + " --data " + test::quote(fx + "mha/data.jsonl") +
                                  " --json --device cpu --precision fp32");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out)["loss"].get<double>();
  };
  const double qlora = loss_of("--model " + test::quote(fx + "mha/model") + " --adapter " +
                               test::quote(out + "/adapter") + " --quantize nf4");
  const double exported = loss_of("--model " + test::quote(merged));
  std::printf("QLoRA export: merged folder loss %.6f, quantized base + adapter %.6f (rel %.2g)\n", exported, qlora,
              std::abs(exported - qlora) / qlora);
  REQUIRE(std::abs(exported - qlora) / qlora < 1e-5);
}
