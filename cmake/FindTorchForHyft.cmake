# Finds LibTorch, in this order:
#   1. CMAKE_PREFIX_PATH / Torch_DIR given by the user (a LibTorch zip, say);
#   2. the project's virtual environment (.venv, made by scripts/setup.sh);
#   3. the python3 on PATH (how it builds on the GPU machine).
# The torch wheel ships TorchConfig.cmake under torch.utils.cmake_prefix_path.

find_package(Torch QUIET)  # 1.
if(NOT Torch_FOUND)
  set(_hyft_pythons "${CMAKE_SOURCE_DIR}/.venv/bin/python3")  # 2.
  find_program(_hyft_path_python NAMES python3 python)
  if(_hyft_path_python)
    list(APPEND _hyft_pythons "${_hyft_path_python}")          # 3.
  endif()
  foreach(_py IN LISTS _hyft_pythons)
    if(NOT EXISTS "${_py}")
      continue()
    endif()
    execute_process(
      COMMAND "${_py}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _rc ERROR_QUIET)
    if(_rc EQUAL 0 AND EXISTS "${_torch_prefix}")
      message(STATUS "hyft: LibTorch from ${_py} (${_torch_prefix})")
      set(HYFT_TORCH_PYTHON "${_py}")
      list(PREPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
      find_package(Torch QUIET)
      if(Torch_FOUND)
        break()
      endif()
    endif()
  endforeach()
endif()
if(NOT Torch_FOUND)
  message(FATAL_ERROR
    "hyft: LibTorch not found. Run scripts/setup.sh (it installs torch==2.11.0 into "
    ".venv), or pass -DCMAKE_PREFIX_PATH=<libtorch or torch.utils.cmake_prefix_path>.")
endif()
message(STATUS "hyft: Torch ${Torch_VERSION}")

# The Python used by the parity tests: the venv's if there is one, else the one
# LibTorch came from, else python3 on PATH.
if(EXISTS "${CMAKE_SOURCE_DIR}/.venv/bin/python3")
  set(HYFT_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python3" CACHE FILEPATH "Python for parity tests")
elseif(HYFT_TORCH_PYTHON)
  set(HYFT_PYTHON "${HYFT_TORCH_PYTHON}" CACHE FILEPATH "Python for parity tests")
else()
  find_program(HYFT_PYTHON NAMES python3)
endif()
