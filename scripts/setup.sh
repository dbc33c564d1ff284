#!/usr/bin/env bash
# Installs what hyft needs on a fresh Debian 12 / Ubuntu 24.04 machine, then
# configures and builds. Safe to re-run: every step skips what is already there.
#
#   scripts/setup.sh            install + configure + build (Release)
#   HYFT_SKIP_APT=1 ...         do not touch system packages
#   HYFT_ENV_CACHE=DIR ...      where the shared Python environment lives
#
# The Python environment (torch wheel, several GB, plus the reference packages)
# lives outside the clone, keyed by the pinned versions, so a second clone on the
# same machine reuses it; `.venv` in the clone is a link to it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# 1. System packages ---------------------------------------------------------
apt_pkgs=(build-essential cmake ninja-build ccache pkg-config python3-venv
          libsentencepiece-dev sentencepiece nlohmann-json3-dev libcxxopts-dev
          catch2 libyaml-cpp-dev libpcre2-dev libicu-dev libgloo-dev
          libcpp-httplib-dev)
if [ "${HYFT_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${apt_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

# 2. Python environment (torch wheel + reference packages) ---------------------
py=${HYFT_PYTHON:-python3}
pyver=$("$py" -c 'import sys;print("%d.%d"%sys.version_info[:2])')
# The key covers the pinned versions, the Python version and how the environment
# is laid out (layout 2: created at its final path, so entry scripts run).
key=$( (cat scripts/requirements.txt; echo "$pyver"; echo "layout 2") | sha256sum | cut -c1-12)
cache=${HYFT_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hyft}
envdir="$cache/venv-py$pyver-$key"
if [ ! -f "$envdir/.complete" ]; then
  log "creating Python environment $envdir (torch wheel: a few GB, first time only)"
  # Built where it stays: pip writes this path into the first line of every entry
  # script (pip, tensorboard, torchrun), so the folder must never move. An
  # interrupted build has no .complete and is started over.
  rm -rf "$envdir"
  mkdir -p "$cache"
  "$py" -m venv "$envdir"
  "$envdir/bin/python" -m pip install -q --upgrade pip
  "$envdir/bin/python" -m pip install -q -r scripts/requirements.txt
  touch "$envdir/.complete"
fi
extra_stamp="$envdir/.extra-$(sha256sum scripts/requirements-extra.txt | cut -c1-12)"
if [ ! -f "$extra_stamp" ]; then
  log "installing the extra reference packages (scripts/requirements-extra.txt)"
  "$envdir/bin/python" -m pip install -q -r scripts/requirements-extra.txt
  touch "$extra_stamp"
fi
if [ "$(readlink .venv 2>/dev/null)" != "$envdir" ]; then
  rm -rf .venv
  ln -s "$envdir" .venv
fi

# 3. Configure and build -------------------------------------------------------
build=${HYFT_BUILD_DIR:-build}
# ccache: reuse objects across clones (paths relative to the clone) and with the PCH.
export CCACHE_BASEDIR="$root"
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
if [ ! -f "$build/build.ninja" ]; then
  log "configuring $build"
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${HYFT_BUILD_TYPE:-Release}" "${launcher[@]}"
fi
log "building (first build takes several minutes on 2 cores)"
cmake --build "$build" -j "${HYFT_JOBS:-$(nproc)}"
log "built $build/bin/hyft"
