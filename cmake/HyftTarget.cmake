# Common settings for hyft's C++ targets: warnings and the shared precompiled
# header (LibTorch headers cost 20-40 s per TU on 2 cores; the PCH pays once).

add_library(hyft_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch_anchor.cpp)
target_link_libraries(hyft_pch PUBLIC ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json)
target_precompile_headers(hyft_pch PUBLIC ${CMAKE_SOURCE_DIR}/cmake/pch.h)

function(hyft_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  target_precompile_headers(${target} REUSE_FROM hyft_pch)
endfunction()
