#!/usr/bin/env bash
# Prepares what tests/gpu/device_check.sh needs on a GPU machine that has nvcc, CMake, ninja and the
# pip CUDA libraries but none of the build's other dependencies, and no apt and no network there.
# Run it here, on Debian 12 as root: it downloads the Debian packages of those dependencies
# (yaml-cpp, HDF5 and the libraries it loads, Open MPI's libraries and headers, OpenBLAS, CLI11,
# nlohmann-json, GoogleTest, libpng, libjpeg, zlib), unpacks them (dpkg -x: nothing is installed), prunes what the
# build does not use (docs, man pages, static libraries that have shared ones, Fortran, MPI plugins),
# checks that every shared library they need is among them or comes with the GPU machine's compiler
# and C library, and packs them into OUT_DIR/debian-deps.tar.xz with a manifest. device_check.sh
# unpacks that archive on the GPU machine.
#
# Usage: tests/gpu/prepare_device.sh [OUT_DIR=device-deps]
# OUT_DIR is ignored by git and is the folder to carry; the run's `carry` names it. Running the
# script again starts from a clean OUT_DIR (downloaded packages are kept in OUT_DIR.debs/).
# Prints the archive's size and the size of what is carried (tracked tree + OUT_DIR), which must
# stay under 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(realpath -m "${1:-$root/device-deps}")
debs="$out.debs"
limit_bytes=$((64 * 1024 * 1024))

# Each package with the reason it is carried. Libraries the GPU machine's toolchain brings (glibc,
# libstdc++, libgcc_s, libgomp) are NOT carried: they must match its compiler.
packages=(
  libyaml-cpp-dev libyaml-cpp0.7                               # configs
  libhdf5-dev libhdf5-103-1 libsz2 libaec0                     # checkpoints (HDF5 C library, szip/aec filters)
  libcurl4 libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5  # HDF5 1.10 links libcurl (its read-only S3 driver)...
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2
  libldap-2.5-0 libsasl2-2 libbrotli1 libzstd1 libssl3 libgnutls30 libnettle8 libhogweed6 libgmp10
  libp11-kit0 libffi8 libtasn1-6 libunistring2                 # ...and libcurl its TLS, Kerberos and LDAP stack
  libopenmpi-dev libopenmpi3 libhwloc15 libudev1 libevent-core-2.1-7 libevent-pthreads-2.1-7  # MPI (linked; mpirun not carried)
  libopenblas-openmp-dev libopenblas0-openmp libgfortran5 libquadmath0  # GEMM of the CPU layers (the oracle)
  libcli11-dev                                                 # command line (header-only)
  nlohmann-json3-dev                                           # metrics files read back by dptrain plot (header-only)
  libgtest-dev libgmock-dev                                    # the GPU tests (GTest's CMake package names gmock too)
  libpng-dev libpng16-16 libjpeg62-turbo-dev libjpeg62-turbo   # image-folder data sets
  zlib1g-dev zlib1g                                            # gzipped IDX files
)

die() { echo "prepare_device: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (apt-get download into $debs)"
command -v apt-get > /dev/null && command -v dpkg > /dev/null || die "needs apt-get and dpkg (Debian 12)"
grep -q 'VERSION_CODENAME=bookworm' /etc/os-release ||
  echo "prepare_device: warning: not Debian 12 (bookworm): the packages' names and versions may differ" >&2

mkdir -p "$debs"
echo "prepare_device: downloading ${#packages[@]} packages into $debs"
missing=()
for p in "${packages[@]}"; do
  if ! compgen -G "$debs/${p}_*.deb" > /dev/null; then
    (cd "$debs" && apt-get download -q "$p" > /dev/null 2>&1) || missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  die "cannot download: ${missing[*]} (run apt-get update; check the names with apt-cache policy NAME)"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
tree="$stage/deps"
mkdir -p "$tree"
for p in "${packages[@]}"; do
  for deb in "$debs/${p}"_*.deb; do dpkg -x "$deb" "$tree"; done
done

# One library folder, as on a merged-/usr system: a few packages (zlib, libcom-err, libkeyutils)
# still install into /lib; links to absolute paths become links inside the tree.
lib="$tree/usr/lib/x86_64-linux-gnu"
if [[ -d "$tree/lib/x86_64-linux-gnu" ]]; then
  cp -a "$tree/lib/x86_64-linux-gnu/." "$lib/" && rm -rf "$tree/lib"
fi
while IFS= read -r link; do
  target=$(readlink "$link")
  [[ -e "$(dirname "$link")/$(basename "$target")" ]] || die "$link points to $target, which is not carried"
  ln -sfn "$(basename "$target")" "$link"
done < <(find "$tree" -type l -lname '/*')

# Pruning: what neither the build nor the binaries read.
rm -rf "$tree/usr/share/doc" "$tree/usr/share/man" "$tree/usr/share/lintian" "$tree/usr/share/locale" \
  "$tree/usr/share/bug" "$tree/usr/src" "$tree/usr/bin" "$tree/etc" \
  "$lib/fortran" "$lib/openmpi/lib/openmpi3" "$lib"/libmpi_java* "$lib"/liboshmem* "$lib"/libmpi_mpifh* \
  "$lib"/libmpi_usempi* "$lib"/libmca_common_* "$lib"/openmpi/lib/libmca_common_* "$lib"/libhdf5_serial_fortran* "$lib"/libhdf5_serialhl_fortran* \
  "$lib"/openblas-openmp/liblapack* "$lib"/sasl2 "$tree/usr/lib/x86_64-linux-gnu/gnutls"
# Static libraries, except GoogleTest's (it ships no shared ones).
find "$tree" \( -name '*.a' ! -name 'libgtest*.a' ! -name 'libgmock*.a' \) -exec rm -f {} +
find "$tree" -xtype l -delete  # links left dangling by the pruning
find "$tree" -type d -empty -delete

# Completeness: every shared library a carried library needs is carried, or belongs to the GPU
# machine's C library and compiler runtime.
from_device='^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libresolv\.so\.2|ld-linux-x86-64\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libgomp\.so\.1)$'
declare -A have=()
while IFS= read -r f; do have[$(basename "$f")]=1; done < <(find "$tree" \( -type f -o -type l \) -name '*.so*')
unresolved=()
while IFS= read -r f; do
  while read -r needed; do
    [[ -n "${have[$needed]:-}" || "$needed" =~ $from_device ]] || unresolved+=("$(basename "$f") needs $needed")
  done < <(readelf -d "$f" 2> /dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done < <(find "$tree" -type f -name '*.so*')
if ((${#unresolved[@]})); then
  printf '  %s\n' "${unresolved[@]}" | sort -u >&2
  die "the carried libraries need libraries that are not carried (above): add their packages to this script"
fi

{
  echo "# Debian packages unpacked into debian-deps.tar.xz by tests/gpu/prepare_device.sh"
  for p in "${packages[@]}"; do dpkg-deb --showformat='${Package} ${Version}\n' -W "$debs/${p}"_*.deb; done
} > "$stage/MANIFEST.txt"

rm -rf "$out"
mkdir -p "$out"
tar -C "$stage" -cJf "$out/debian-deps.tar.xz" deps
cp "$stage/MANIFEST.txt" "$out/"
unpacked=$(du -sb "$tree" | cut -f1)
carried_deps=$(du -sb "$out" | cut -f1)
tracked=$(cd "$root" && git ls-files -z | xargs -0 du -cb 2> /dev/null | tail -1 | cut -f1)
total=$((carried_deps + tracked))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "prepare_device: $out: debian-deps.tar.xz of ${#packages[@]} packages, $(mib "$carried_deps") ($(mib "$unpacked") unpacked)"
echo "prepare_device: carried: tracked tree $(mib "$tracked") + $(basename "$out")/ $(mib "$carried_deps") = $(mib "$total") of 64 MiB"
((total < limit_bytes)) || die "what would be carried, $(mib "$total"), exceeds 64 MiB"
echo "prepare_device: on the GPU machine, with carry [$(basename "$out")]: tests/gpu/device_check.sh OUTDIR"
