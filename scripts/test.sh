#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs what is missing, builds, then
# runs every test under CTest (Catch2 tests and the transformers/PEFT fixtures).
#   scripts/test.sh [extra ctest arguments, e.g. -R model]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root/${HYFT_BUILD_DIR:-build}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
ctest --output-on-failure --timeout 900 "$@"
