# System dependencies of hyft each for one reason:
#   sentencepiece  - the tokenizer of Llama/DeepSeek models (lib/tokenizer)
#   nlohmann_json  - config.json, safetensors headers, JSONL datasets
#   cxxopts        - the command-line options of apps/hyft
#   yaml-cpp       - --config FILE.yaml
#   Catch2         - tests; v2 on Debian 12, v3 on Ubuntu 24.04 (test/catch.h bridges)
#   ICU            - the NFC/NFKC/NFD/NFKD normalizers of tokenizer.json (Qwen2's NFC);
#                    optional: without it such a file is refused by name
#   PCRE2          - the Unicode regexes of tokenizer.json (lib/tokenizer/bpe_tokenizer);
#                    optional: without it tokenizer.json is refused with a hint
find_package(nlohmann_json 3 REQUIRED)
find_package(cxxopts QUIET)
if(NOT cxxopts_FOUND)
  find_path(CXXOPTS_INCLUDE_DIR cxxopts.hpp REQUIRED)
  add_library(cxxopts::cxxopts INTERFACE IMPORTED)
  target_include_directories(cxxopts::cxxopts INTERFACE ${CXXOPTS_INCLUDE_DIR})
endif()
find_package(yaml-cpp REQUIRED)
if(TARGET yaml-cpp::yaml-cpp)
  set(HYFT_YAML_TARGET yaml-cpp::yaml-cpp)  # yaml-cpp 0.8 (Ubuntu 24.04)
else()
  set(HYFT_YAML_TARGET yaml-cpp)            # yaml-cpp 0.7 (Debian 12)
endif()

find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
pkg_check_modules(ICU QUIET IMPORTED_TARGET icu-uc)

find_package(Threads REQUIRED)
