#!/usr/bin/env bash
# Runs a command with this machine's copies of the packages tests/gpu/prepare_device.sh carries
# hidden (empty files and folders bound over them in a private mount namespace), except libraries
# that the build tools themselves load (cmake's libcurl, zlib, ...). It shows, on a Debian 12
# machine that has the build's -dev packages installed, that the device check finds everything it
# needs in the carried folder, as it must on the GPU machine, which has none of them:
#
#   tests/gpu/isolate_deps.sh env BUILD_SECONDS=3600 tests/gpu/device_check.sh /tmp/check
#
# Usage: tests/gpu/isolate_deps.sh COMMAND [ARGS...]   (root; after prepare_device.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
manifest=${MANIFEST:-$root/device-deps/MANIFEST.txt}
[[ $(id -u) -eq 0 ]] || { echo "isolate_deps: run as root (it mounts)" >&2; exit 2; }
[[ -f $manifest ]] || { echo "isolate_deps: $manifest is missing: run tests/gpu/prepare_device.sh first" >&2; exit 2; }
[[ $# -ge 1 ]] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

tools=(cmake ninja python3 git tar xz gzip bash timeout ccache nvcc
       "$(gcc -print-prog-name=cc1plus)" "$(gcc -print-prog-name=ld)" "$(gcc -print-prog-name=as)")
declare -A keep=()
for t in "${tools[@]}"; do
  t=$(command -v "$t" || true)
  [[ -n $t ]] || continue
  for l in $(ldd "$(readlink -f "$t")" 2> /dev/null | awk '/=>/ {print $3}'); do keep[$(readlink -f "$l")]=1; done
done

hide_dirs=(/usr/include/yaml-cpp /usr/include/hdf5 /usr/include/CLI /usr/include/gtest /usr/include/gmock
           /usr/include/libpng16 /usr/include/x86_64-linux-gnu/openmpi /usr/include/x86_64-linux-gnu/openblas-openmp
           /usr/include/nlohmann
           /usr/lib/x86_64-linux-gnu/hdf5 /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/openblas-openmp
           /usr/lib/x86_64-linux-gnu/cmake/yaml-cpp /usr/lib/x86_64-linux-gnu/cmake/GTest /usr/share/cmake/CLI11
           /usr/share/cmake/nlohmann_json)
inside_hidden() {
  local d
  for d in "${hide_dirs[@]}"; do [[ $1 == "$d"/* ]] && return 0; done
  return 1
}
empty_dir=$(mktemp -d)
empty_file=$(mktemp)
script=$(mktemp)
{
  for d in "${hide_dirs[@]}"; do [[ -d $d ]] && echo "mount --bind $empty_dir $d"; done
  # Every file of the carried packages, and the launchers and wrappers that would find the system's.
  sed -n 's/^\([a-z0-9.+-]*\) .*/\1/p' "$manifest" | while read -r p; do dpkg -L "$p" 2> /dev/null || true; done |
    grep -E '^/usr/(include|lib/x86_64-linux-gnu|bin)/' | sort -u | while read -r f; do
      [[ -f $f ]] && ! inside_hidden "$f" && [[ -z "${keep[$(readlink -f "$f")]:-}" ]] &&
        echo "mount --bind $empty_file $f 2> /dev/null || true"
    done
  for f in /usr/bin/mpicc /usr/bin/mpirun /usr/bin/mpiexec /usr/bin/h5cc /usr/bin/opal_wrapper /usr/bin/orterun /usr/bin/orted; do
    [[ -f $f ]] && echo "mount --bind $empty_file $f 2> /dev/null || true"
  done
  printf 'exec'
  printf ' %q' "$@"
  echo
} > "$script"
echo "isolate_deps: $(grep -c '^mount' "$script") paths hidden" >&2
exec unshare -m --propagation private bash "$script"
