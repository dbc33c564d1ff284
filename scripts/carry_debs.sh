#!/usr/bin/env bash
# On the GPU machine (no internet, no -dev packages of its own): unpacks the
# Debian packages carried in .wheels/*.deb into PREFIX and points pkg-config and
# the loader at them. Source it:  . scripts/carry_debs.sh /tmp/debs
prefix=${1:-/tmp/debs}
mkdir -p "$prefix"
for d in .wheels/*.deb; do dpkg -x "$d" "$prefix"; done
for pc in "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc "$prefix"/usr/share/pkgconfig/*.pc; do
  [ -f "$pc" ] && sed -i "s|^prefix=.*|prefix=$prefix/usr|" "$pc"
done
export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export CMAKE_INCLUDE_PATH="$prefix/usr/include:${CMAKE_INCLUDE_PATH:-}"
