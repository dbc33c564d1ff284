#!/usr/bin/env bash
# The project's Python environment (.venv, made by scripts/setup.sh) has working
# entry scripts: pip, tensorboard and torchrun start and print their versions.
# Exit 77 (skipped) where the build uses another Python and there is no .venv.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv="$root/.venv"
[ -d "$venv/bin" ] || { echo "no $venv: the build uses another Python; skipped"; exit 77; }
status=0
for tool in pip tensorboard torchrun; do
  exe="$venv/bin/$tool"
  if [ ! -x "$exe" ]; then
    echo "FAIL: $exe is missing"; status=1; continue
  fi
  arg=--version; [ "$tool" = torchrun ] && arg=--help  # torchrun has no --version
  if out=$("$exe" "$arg" 2>&1); then
    echo "ok   $tool: $(echo "$out" | head -1)"
  else
    echo "FAIL: $exe does not run (first line: $(head -1 "$exe")):"; echo "$out" | tail -3; status=1
  fi
done
exit $status
