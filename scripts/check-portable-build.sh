#!/usr/bin/env bash
# Proves, on this Debian machine, that the core builds the way it must on the GPU machine:
# with LibTorch, the compiler, libc and CUDA only, plus third_party/debian from
# scripts/vendor-deps.sh (docs/gpu-build.md). Root only: in a private mount namespace
# (unshare -m), the Debian -dev packages listed in HIDDEN_PACKAGES below are made invisible,
# then a fresh build folder is configured, the core is built and its tests run.
#
#   sudo bash scripts/check-portable-build.sh [BUILD_DIR]     (default: build-portable)
#   DIT_PORTABLE_CONFIGURE_ONLY=1 ...                         masks, probes and configure only
#   DIT_PORTABLE_KEEP_BUILD=1 ...                             reuse BUILD_DIR (incremental rebuild;
#                                                             default: a fresh one)
#   DIT_PORTABLE_JOBS=N ...                                   cmake --build -jN (default 1)
#   DIT_PORTABLE_CMAKE_ARGS="-DDIT_PCH=ON" ...                more configure arguments
#   DIT_PORTABLE_TARGETS="dit test_kernels" ...               what to build (default: the core:
#                                 dit dit_cli dit-bench test_{model,kernels,io,samplers,train,image,apps})
#   DIT_PORTABLE_LABELS='^(kernels)$' ...                     ctest -L (default: the core labels
#                                 model kernels io samplers train domains apps)
#
# What is hidden, and how. For each of the mirrored folders
#   /usr/include  /usr/lib  /usr/share/cmake  /usr/share/pkgconfig  /usr/src
# a hardlinked copy (cp -al, under /var/tmp: no data is copied, the originals are never
# touched) loses every file that a package of HIDDEN_PACKAGES installs there (dpkg -L), plus
# whatever matches HIDDEN_PATTERNS (the same things by name, in case a file is not owned by
# the package list); the copy is then bind-mounted over the original, in this namespace only.
# Hidden that way: the headers (fmt, nlohmann, CLI, gtest, gmock, png*.h/libpng16, zlib.h,
# zconf.h, hdf5/, rdkit/, openmm/, OpenMM*.h, gemmi/, toml++/, tao/, spglib.h, boost/, spdlog/,
# stb/, benchmark/, catch2/, szlib.h, libaec.h), their CMake package folders, their pkg-config
# files, the dev .so symlinks and static archives (libpng*.so/.a, libz.so/.a, libfmt.so,
# libhdf5*.so/.a and lib/x86_64-linux-gnu/hdf5/, /usr/lib/libRDKit*.so, libOpenMM*.so, libsymspg.so,
# libtomlplusplus.so, libgtest*/libgmock*, libboost_*, libspdlog.so, libbenchmark*) and
# /usr/src/googletest. Their programs in /usr/bin (h5cc, h5c++, libpng-config, ...) are
# masked by an empty, non-executable file. Runtime libraries (libz.so.1, libpng16.so.16,
# libhdf5_serial.so.103, ...) stay: the GPU machine has a libz.so.1 too, and nothing links
# against the others without their dev symlink.
# Kept: libtorch-dev and what its CMake config and headers need (glog, gflags, protobuf,
# python3-dev), the compiler, libc, the kernel headers, ncurses & co., CUDA in /usr/local/cuda.
# Before configuring, probes check that the compiler cannot reach a hidden header or library
# (each `g++ -E` / `-l` probe must fail) and still reaches torch. Torch is Debian's 1.13 behind
# a wrapper TorchConfig.cmake that adds what a PyTorch 2.x wheel has and Debian's lacks: fmt
# headers in torch's include folder (poisoned with #error here: ours must win). The configure
# must report fmt, PNG, CLI11 and GoogleTest from the vendored folder and the CUDA kernels
# section (nvcc: /usr/local/cuda/bin); after the build, ninja's dependency lists must name no
# hidden header.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

HIDDEN_PACKAGES=(
  libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev googletest
  libpng-dev zlib1g-dev libhdf5-dev libaec-dev librdkit-dev libopenmm-dev gemmi-dev
  tao-pegtl-dev libtomlplusplus-dev libsymspg-dev libboost-dev libboost1.74-dev
  libspdlog-dev libstb-dev libbenchmark-dev catch2
)
# The same things by name (shell globs), wherever a file is not owned by the packages above.
HIDDEN_PATTERNS=(
  /usr/include/{fmt,nlohmann,CLI,gtest,gmock,libpng,libpng16,hdf5,rdkit,openmm,gemmi,toml++,tao}
  /usr/include/{boost,spdlog,stb,benchmark,catch2}
  /usr/include/{'png*.h',zlib.h,zconf.h,'H5*.h','hdf5*.h','OpenMM*.h',spglib.h,szlib.h,libaec.h}
  /usr/lib/x86_64-linux-gnu/{'libpng*.so','libpng*.a',libz.so,libz.a,libfmt.so,libfmt.a,hdf5}
  /usr/lib/x86_64-linux-gnu/{'libhdf5*.so','libhdf5*.a','libRDKit*.so','libOpenMM*.so'}
  /usr/lib/x86_64-linux-gnu/{libsymspg.so,libsymspg.a,libtomlplusplus.so,'libgtest*','libgmock*'}
  /usr/lib/x86_64-linux-gnu/{'libboost_*.so','libboost_*.a',libspdlog.so,'libbenchmark*'}
  /usr/lib/{'libRDKit*.so','libOpenMM*.so','libCatch2*',openmm,'libgemmi*'}
  /usr/lib/x86_64-linux-gnu/cmake/{fmt,GTest,tomlplusplus,spdlog,benchmark,'Boost*','boost_*'}
  /usr/lib/x86_64-linux-gnu/cmake/{'hdf5*','OpenMM*','rdkit*',gemmi,CLI11,nlohmann_json}
  /usr/lib/cmake/{Catch2,'rdkit*','OpenMM*',gemmi,CLI11,nlohmann_json,fmt,GTest}
  /usr/share/cmake/{CLI11,nlohmann_json,fmt,GTest,gemmi}
  /usr/lib/x86_64-linux-gnu/pkgconfig/{'libpng*.pc',zlib.pc,fmt.pc,'hdf5*.pc','gtest*.pc'}
  /usr/lib/x86_64-linux-gnu/pkgconfig/{'gmock*.pc',tomlplusplus.pc,spglib.pc,spdlog.pc}
  /usr/lib/x86_64-linux-gnu/pkgconfig/{benchmark.pc,stb.pc}
  /usr/share/pkgconfig/{CLI11.pc,nlohmann_json.pc,catch2.pc}
  /usr/src/googletest
)
# HDF5's compiler wrappers (alternatives of hdf5-helpers, not owned by libhdf5-dev).
HIDDEN_PROGRAMS=(h5cc h5c++ h5pcc h5fc h5pfc libpng-config libpng16-config)
MIRRORED=(/usr/include /usr/lib /usr/share/cmake /usr/share/pkgconfig /usr/src)

build=${1:-build-portable}
case $build in /*) ;; *) build=$root/$build ;; esac

if [ "${DIT_PORTABLE_INSIDE:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "check-portable-build: needs root (unshare -m, mount --bind)" >&2; exit 1; }
  vendor=$root/third_party/debian
  [ -d "$vendor/usr" ] || { echo "check-portable-build: no $vendor: run scripts/vendor-deps.sh first" >&2; exit 1; }
  work=$(mktemp -d /var/tmp/dit-portable.XXXXXX)  # same file system as /usr: cp -al works
  trap 'rm -rf -- "$work"' EXIT
  status=0
  DIT_PORTABLE_INSIDE=1 DIT_PORTABLE_WORK=$work unshare -m --propagation private \
    bash "${BASH_SOURCE[0]}" "$build" || status=$?
  exit $status
fi

# ---- inside the private mount namespace ---------------------------------------------------
work=$DIT_PORTABLE_WORK
log() { echo "check-portable-build: $*"; }

# Files of the hidden packages, with /lib/... spelled /usr/lib/... (merged /usr).
owned=$work/owned.txt
for p in "${HIDDEN_PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    dpkg -L "$p"
  fi
done | sed -e 's|^/lib/|/usr/lib/|' | sort -u > "$owned"

n=0
for dir in "${MIRRORED[@]}"; do
  [ -d "$dir" ] || continue
  copy=$work/mirror$dir
  mkdir -p "$(dirname "$copy")"
  cp -al "$dir" "$copy"
  # Package files under this folder: files and links first, then the folders they leave empty.
  while IFS= read -r f; do
    rel=${f#"$dir"/}
    [ "$rel" != "$f" ] || continue
    if [ -L "$copy/$rel" ] || [ -f "$copy/$rel" ]; then rm -f -- "$copy/$rel"; n=$((n + 1)); fi
  done < "$owned"
  grep "^$dir/" "$owned" | sort -r | while IFS= read -r f; do
    rel=${f#"$dir"/}
    [ -d "$copy/$rel" ] && [ ! -L "$copy/$rel" ] && rmdir --ignore-fail-on-non-empty -- "$copy/$rel"
  done || true
  # And by name.
  for pat in "${HIDDEN_PATTERNS[@]}"; do
    [ "${pat#"$dir"/}" != "$pat" ] || continue
    for hit in "$copy"/${pat#"$dir"/}; do
      if [ -e "$hit" ] || [ -L "$hit" ]; then rm -rf -- "$hit"; n=$((n + 1)); fi
    done
  done
  mount --bind "$copy" "$dir"
done
log "hid $n files and folders of ${#HIDDEN_PACKAGES[@]} packages in ${MIRRORED[*]}"

# Their programs (h5cc, h5c++, libpng-config, ...): an empty non-executable file on top.
: > "$work/masked"
chmod 0644 "$work/masked"
masked=()
while IFS= read -r f; do
  f=/usr/bin/${f##*/}
  if [ -e "$f" ]; then mount --bind "$work/masked" "$f"; masked+=("${f##*/}"); fi
done < <(grep -E '^/usr/bin/|^/bin/' "$owned"; printf '%s\n' "${HIDDEN_PROGRAMS[@]}")
log "masked programs: ${masked[*]:-none}"

# ---- probes: nothing hidden is reachable, torch is -----------------------------------------
fail=0
for h in fmt/format.h nlohmann/json.hpp CLI/CLI.hpp gtest/gtest.h gmock/gmock.h png.h zlib.h \
         zconf.h hdf5.h hdf5/serial/hdf5.h rdkit/GraphMol/ROMol.h GraphMol/ROMol.h OpenMM.h \
         openmm/OpenMM.h gemmi/pdb.hpp toml++/toml.h tao/pegtl.hpp spglib.h boost/version.hpp \
         spdlog/spdlog.h stb/stb_image.h benchmark/benchmark.h; do
  if echo "#include <$h>" | g++ -std=c++17 -E -x c++ - -o /dev/null 2>/dev/null; then
    log "LEAK: <$h> is still reachable"; fail=1
  fi
done
echo 'int main() { return 0; }' > "$work/main.cpp"
for l in png png16 z fmt hdf5 hdf5_serial RDKitGraphMol OpenMM symspg tomlplusplus gtest gtest_main \
         gmock boost_system spdlog benchmark; do
  if g++ "$work/main.cpp" -o "$work/a.out" -l$l 2>/dev/null; then
    log "LEAK: -l$l still links"; fail=1
  fi
done
for p in "${HIDDEN_PROGRAMS[@]}"; do
  if command -v "$p" >/dev/null && [ -x "$(command -v "$p")" ]; then log "LEAK: $p runs"; fail=1; fi
done
if ! echo '#include <torch/torch.h>' |
     g++ -std=c++17 -I/usr/include/torch/csrc/api/include -E -x c++ - -o /dev/null; then
  log "torch/torch.h does not preprocess any more (a hidden package is one that torch needs)"; fail=1
fi
[ $fail -eq 0 ] || { log "probes failed"; exit 1; }
log "probes passed: no hidden header or library is reachable; torch/torch.h is"

# ---- a torch that ships fmt, as PyTorch 2.x wheels do ------------------------------------
# Their torch/include/fmt (fmt 11/12) is on every command line before anything else. Debian's
# torch has none, so a wrapper of its TorchConfig.cmake puts a folder first in
# TORCH_INCLUDE_DIRS whose fmt headers are an #error: a file that reads torch's fmt fails.
if [ "${DIT_PORTABLE_KEEP_BUILD:-}" != 1 ]; then rm -rf -- "$build"; fi
sim=${DIT_PORTABLE_TORCH_SIM:-$build/torch-wheel-sim}   # a fixed path: a kept build stays valid
mkdir -p "$sim/cmake" "$sim/include/fmt"
for h in format.h core.h base.h ranges.h ostream.h std.h; do
  echo '#error "fmt from torch/include (as in a PyTorch wheel): find_package(fmt)'"'"'s must come first"' \
    > "$sim/include/fmt/$h"
done
cat > "$sim/cmake/TorchConfig.cmake" <<EOF_TORCH
include(/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake)
list(INSERT TORCH_INCLUDE_DIRS 0 $sim/include)
EOF_TORCH

# ---- configure, build, test --------------------------------------------------------------
export PATH=$PATH:/usr/local/cuda/bin   # the CUDA section must configure as on the GPU machine
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# shellcheck disable=SC2086  # DIT_PORTABLE_CMAKE_ARGS: extra arguments, split on spaces
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$sim/cmake" \
  ${DIT_PORTABLE_CMAKE_ARGS:-} 2>&1 | tee "$work/configure.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { log "configure failed"; exit 1; }
for want in "dit: fmt from" "dit: PNG from" "dit: GoogleTest built from" "dit: CLI11 from" \
            "dit: torch ships fmt headers" "dit: CUDA kernels for architectures"; do
  grep -q "$want" "$work/configure.log" || { log "configure did not say '$want'"; exit 1; }
done
log "configure passed"
if [ "${DIT_PORTABLE_CONFIGURE_ONLY:-}" = 1 ]; then exit 0; fi

read -r -a targets <<< "${DIT_PORTABLE_TARGETS:-dit dit_cli dit-bench test_model test_kernels test_io test_samplers test_train test_image test_apps}"
nice -n 19 cmake --build "$build" -j "${DIT_PORTABLE_JOBS:-1}" --target "${targets[@]}"
log "build passed: ${targets[*]}"

# Nothing in the build may come from a hidden place: every header the compiler read is listed
# in the dependency files (ninja: .ninja_deps).
if [ -f "$build/build.ninja" ]; then
  ninja -C "$build" -t deps > "$work/deps.txt"
  if grep -E "^ +/usr/include/(fmt|nlohmann|CLI|gtest|gmock|png|zlib|zconf|hdf5|rdkit|openmm|gemmi|toml\+\+|tao|boost)" \
       "$work/deps.txt" | head -5 | grep .; then
    log "LEAK: the build read hidden headers (above)"; exit 1
  fi
  log "headers from the vendored folder: $(grep -c "third_party/debian" "$work/deps.txt") dependency lines"
fi
for exe in "$build/dit" "$build/dit-bench"; do
  ldd "$exe" | grep -E "libpng|libz|libdit" | sed "s|^|  ${exe##*/}: |"
done

labels=${DIT_PORTABLE_LABELS:-'^(model|kernels|io|samplers|train|domains|apps)$'}
(cd "$build" && ctest -L "$labels" --output-on-failure -j "${DIT_PORTABLE_JOBS:-1}")
log "ctest passed (labels $labels)"
