#!/usr/bin/env bash
# The installed package as a pipeline author uses it: `cmake --install` into a fresh prefix,
# build apps/examples with find_package(dit) against that prefix (never the build tree), run the
# example, and read its H5MD output back with h5py.
#   test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d /tmp/dit-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/lib/cmake/dit/ditConfig.cmake"
test -f "$tmp/prefix/include/dit/h5md.h"
test -f "$tmp/prefix/share/dit/models/fmnist-dit.safetensors"

launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CCACHE_BASEDIR="$tmp" cmake -S "$src/apps/examples" -B "$tmp/example" -G Ninja \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" "${launcher[@]}" > "$tmp/configure.log" \
  || { cat "$tmp/configure.log"; exit 1; }
CCACHE_BASEDIR="$tmp" cmake --build "$tmp/example" > "$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }

# It must run on the installed library and find the installed model.
# (ldd goes to a file: `ldd | grep -q` under pipefail fails when grep exits before ldd is done.)
ldd "$tmp/example/sample_to_h5md" > "$tmp/ldd.txt"
grep -q "$tmp/prefix/lib/libdit.so" "$tmp/ldd.txt" \
  || { echo "example does not link the installed libdit.so:"; cat "$tmp/ldd.txt"; exit 1; }
env -u DIT_DATA_DIR "$tmp/example/sample_to_h5md" "$tmp/out.h5" 2
/usr/bin/python3 "$src/tests/jobs/check_h5md.py" "$tmp/out.h5"
/usr/bin/python3 - "$tmp/out.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f["images/value"].shape == (8, 1, 28, 28), f["images/value"].shape
    assert list(f["images/label"][()]) == [0, 0, 0, 0, 7, 7, 7, 7]
    assert f["parameters/sampler"].attrs["steps"] == 2
print("install test: example built against the installed package and its output reads back")
PY
