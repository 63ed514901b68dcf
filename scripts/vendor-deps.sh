#!/usr/bin/env bash
# Extracts the Debian packages that the core build needs (besides LibTorch) into
# third_party/debian/ (git-ignored), so that the tree builds on a machine that has a CUDA
# PyTorch, nvcc, CMake and ninja but none of Debian's -dev packages (docs/gpu-build.md).
# CMake picks the folder up by itself (DIT_VENDOR_DIR), and only for a package that the
# system does not provide: on Debian with the -dev packages installed, nothing changes.
#   bash scripts/vendor-deps.sh            extract (idempotent: a second run re-extracts the
#                                          same .debs from the download cache in seconds)
#   DIT_VENDOR_DIR=/some/dir bash ...      another destination
# Needs apt-get (Debian 12) with an `apt-get update` done once; no root needed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${DIT_VENDOR_DIR:-$root/third_party/debian}
cache=$root/third_party/debs   # the downloaded .deb files (kept, so a re-run is offline)

# Header-only libraries, plus the runtime package wherever the -dev package's CMake config or
# its .so symlink needs the real file to exist.
packages=(
  libfmt-dev libfmt9                        # fmt (fmt-targets.cmake checks libfmt.so.9.1.0)
  nlohmann-json3-dev                        # nlohmann_json (header-only)
  libcli11-dev                              # CLI11 (header-only): dit, dit-bench
  googletest                                # /usr/src/googletest: built from source by tests/
  libpng-dev libpng16-16                    # PNG (libpng16.so.16 travels; found via RPATH)
  zlib1g-dev zlib1g                         # zlib.h; libz.so only to link (runtime: the host's)
  libtomlplusplus-dev libtomlplusplus3      # toml++ (batch jobs also need HDF5: off without it)
)

mkdir -p "$cache"
cd "$cache"
# apt-get download takes the candidate version; skip what is already here.
need=()
for p in "${packages[@]}"; do
  compgen -G "${p}_*.deb" >/dev/null || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "vendor-deps: downloading ${need[*]}"
  if ! apt-get download "${need[@]}"; then
    echo "vendor-deps: error: 'apt-get download ${need[*]}' failed (run 'apt-get update' once, check the package names)" >&2
    exit 1
  fi
fi
for p in "${packages[@]}"; do
  n=$(compgen -G "${p}_*.deb" | wc -l)
  if [ "$n" -ne 1 ]; then
    echo "vendor-deps: error: expected one ${p}_*.deb in $cache, found $n" >&2
    exit 1
  fi
done

# Extract into a fresh folder and swap it in, so a failed run leaves the old one intact.
tmp=$dest.tmp.$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
for p in "${packages[@]}"; do
  dpkg -x "$(compgen -G "${p}_*.deb")" "$tmp"
done
rm -rf "$tmp/usr/share/doc" "$tmp/usr/share/doc-base" "$tmp/usr/share/man" "$tmp/usr/share/lintian" \
       "$tmp/usr/bin"
# Shared libraries only: no static archive gets linked by accident (FindPNG/FindZLIB).
find "$tmp" -name 'lib*.a' -delete

# Absolute symlinks (libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) would point into the
# host: make them relative when their target was extracted too, and drop them otherwise.
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  case $target in
    /*) if [ -e "$tmp$target" ]; then ln -sfr "$tmp$target" "$link"; else rm -f "$link"; fi ;;
  esac
done < <(find "$tmp" -type l -print0)

rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
printf '%s\n' "${packages[@]}" > "$dest/PACKAGES"
echo "vendor-deps: $(du -sh "$dest" | cut -f1) in $dest (${#packages[@]} packages; .debs cached in $cache, $(du -sh "$cache" | cut -f1))"
