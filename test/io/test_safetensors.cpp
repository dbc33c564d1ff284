// safetensors: round trips for every dtype, interop with the Python package, and
// refusal of every kind of malformed file with a clear error.
#include "support/catch.h"
#include "support/process.h"

#include "common/error.h"
#include "io/safetensors.h"

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using hyft::io::SafetensorsFile;
using hyft::io::save_safetensors;

namespace {

// A raw file: 8-byte length, the header text, then `data_bytes` zero bytes.
std::string write_raw(const std::string& dir, const std::string& name, const std::string& header,
                      size_t data_bytes, int64_t declared_len = -1) {
  const std::string path = dir + "/" + name;
  std::ofstream f(path, std::ios::binary);
  uint64_t n = declared_len >= 0 ? uint64_t(declared_len) : header.size();
  for (int i = 0; i < 8; ++i) f.put(char((n >> (8 * i)) & 0xff));
  f << header << std::string(data_bytes, '\0');
  return path;
}

std::string error_of(const std::string& path) {
  try {
    SafetensorsFile f(path);
    for (const auto& k : f.keys()) f.tensor(k);
  } catch (const hyft::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors round trip keeps every dtype, shape and value", "[io]") {
  const std::string dir = hyft::test::temp_dir("safetensors_roundtrip");
  at::manual_seed(0);
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f64", at::randn({3, 5}, at::kDouble)},
      {"f32", at::randn({2, 3, 4})},
      {"f16", at::randn({7}).to(at::kHalf)},
      {"bf16", at::randn({4, 3}).to(at::kBFloat16)},
      {"i64", at::randint(-1000, 1000, {6}, at::kLong)},
      {"i32", at::randint(-1000, 1000, {2, 2}, at::kInt)},
      {"i16", at::randint(-1000, 1000, {3}, at::kShort)},
      {"i8", at::randint(-100, 100, {5}, at::kChar)},
      {"u8", at::randint(0, 255, {5}, at::kByte)},
      {"bool", at::rand({9}) > 0.5},
      {"scalar", at::scalar_tensor(3.5)},
      {"empty", at::empty({0, 4})},
      {"strided", at::randn({4, 6}).t()},  // not contiguous: stored contiguous
  };
  const std::string path = dir + "/t.safetensors";
  save_safetensors(path, tensors, {{"format", "pt"}});
  SafetensorsFile f(path);
  REQUIRE(f.keys().size() == tensors.size());
  REQUIRE(f.metadata().at("format") == "pt");
  for (const auto& [name, t] : tensors) {
    INFO(name);
    at::Tensor back = f.tensor(name);
    REQUIRE(back.scalar_type() == t.scalar_type());
    REQUIRE(back.sizes() == t.sizes());
    REQUIRE(at::equal(back, t));
  }
  // Writing into a loaded tensor never changes the file.
  f.tensor("f32").zero_();
  REQUIRE(at::equal(SafetensorsFile(path).tensor("f32"), tensors[1].second));
}

TEST_CASE("safetensors written by hyft read in Python, and the reverse", "[io]") {
  const std::string dir = hyft::test::temp_dir("safetensors_python");
  const std::string ours = dir + "/ours.safetensors", theirs = dir + "/theirs.safetensors";
  save_safetensors(ours, {{"a", at::arange(12, at::kFloat).reshape({3, 4})},
                          {"b", at::arange(5, at::kLong)},
                          {"c", (at::arange(6, at::kFloat) / 3).to(at::kBFloat16)}});
  const std::string script =
      "import sys, torch\n"
      "from safetensors.torch import load_file, save_file\n"
      "t = load_file(sys.argv[1])\n"
      "assert torch.equal(t['a'], torch.arange(12.).reshape(3, 4)), t['a']\n"
      "assert torch.equal(t['b'], torch.arange(5)), t['b']\n"
      "assert torch.equal(t['c'], (torch.arange(6.) / 3).bfloat16()), t['c']\n"
      "save_file({'x': torch.linspace(-1, 1, 10).half(), 'y': torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)},"
      " sys.argv[2], metadata={'who': 'python'})\n";
  std::ofstream(dir + "/check.py") << script;
  const auto r = hyft::test::run_python(hyft::test::quote(dir + "/check.py") + " " + ours + " " + theirs);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  SafetensorsFile f(theirs);
  REQUIRE(f.metadata().at("who") == "python");
  REQUIRE(at::equal(f.tensor("x"), at::linspace(-1, 1, 10).to(at::kHalf)));
  REQUIRE(at::equal(f.tensor("y"), at::tensor({1, 2, 3, 4}, at::kInt).reshape({2, 2})));
}

TEST_CASE("malformed safetensors files are refused with a clear error", "[io]") {
  const std::string dir = hyft::test::temp_dir("safetensors_bad");
  struct Case {
    const char* name;
    std::string header;
    size_t data;
    int64_t declared;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"short", "", 0, -2, "shorter than the 8-byte header"},
      {"len_past_end", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, 1 << 20,
       "runs past the end of the file"},
      {"len_huge", "{}", 0, int64_t(1) << 62, "runs past the end"},
      {"bad_json", R"({"a":{"dtype":"F32",)", 0, -1, "not valid JSON"},
      {"not_object", "[1,2]", 0, -1, "not a JSON object"},
      {"out_of_bounds", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8, -1,
       "past the end of the data"},
      {"overlap", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, -1, "overlap"},
      {"size_mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, -1,
       "need 12"},
      {"unknown_dtype", R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2, -1,
       "unsupported dtype 'F8_E4M3'"},
      {"bogus_dtype", R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", 2, -1,
       "unknown or unsupported dtype"},
      {"reversed", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4, -1, "reversed"},
      {"negative_shape", R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", 0, -1,
       "non-negative"},
      {"missing_offsets", R"({"a":{"dtype":"U8","shape":[1]}})", 1, -1, "data_offsets"},
  };
  for (const auto& c : cases) {
    std::string path;
    if (c.declared == -2) {
      path = dir + "/short";
      std::ofstream(path) << "abc";
    } else {
      path = write_raw(dir, c.name, c.header, c.data, c.declared);
    }
    const std::string err = error_of(path);
    INFO(c.name << ": " << err);
    REQUIRE(err.find(c.expect) != std::string::npos);
    REQUIRE(err.find(path) != std::string::npos);  // names the file
  }
  REQUIRE(error_of(dir + "/does-not-exist").find("cannot open") != std::string::npos);
}

TEST_CASE("a failed write leaves no file behind", "[io]") {
  const std::string dir = hyft::test::temp_dir("safetensors_atomic");
  const std::string path = dir + "/x.safetensors";
  REQUIRE_THROWS_AS(save_safetensors(path, {{"a", at::zeros({2})}, {"a", at::zeros({3})}}),
                    hyft::UserError);
  REQUIRE_THROWS_AS(save_safetensors(path, {{"q", at::zeros({2}, at::kComplexFloat)}}),
                    hyft::UserError);
  REQUIRE(std::distance(std::filesystem::directory_iterator(dir), {}) == 0);
}
