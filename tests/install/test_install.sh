#!/usr/bin/env bash
# The installed package as a pipeline author uses it: `cmake --install` into a fresh prefix,
# build apps/examples with find_package(dit) against that prefix (never the build tree), run the
# example, and read its H5MD output back with h5py. Then, with the docking component (DOCKING=ON):
# build apps/examples/docking_consumer (find_package(dit COMPONENTS docking), dit::docking) and
# run it on the docking fixtures; compile every installed header on its own
# (tests/install/headers); and ask for an unknown component, which must fail with a clear message.
#   test_install.sh BUILD_DIR SOURCE_DIR [DOCKING(ON|OFF)] [PROTEIN(ON|OFF)] [CRYSTAL(ON|OFF)]
set -euo pipefail
build=$1
src=$2
docking=${3:-OFF}
protein=${4:-OFF}
crystal=${5:-OFF}
tmp=$(mktemp -d /tmp/dit-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/lib/cmake/dit/ditConfig.cmake"
test -f "$tmp/prefix/include/dit/h5md.h"
test -f "$tmp/prefix/share/dit/models/fmnist-dit.safetensors"

if [ "$docking" = ON ]; then
  test -f "$tmp/prefix/include/dit/docking.h"
  test -f "$tmp/prefix/lib/cmake/dit/ditDockingTargets.cmake"
  test -f "$tmp/prefix/lib/cmake/dit/modules/FindRDKit.cmake"
  test -f "$tmp/prefix/lib/cmake/dit/modules/FindOpenMM.cmake"
else
  test ! -e "$tmp/prefix/include/dit/docking.h"  # its header comes with the component
fi

if [ "$protein" = ON ]; then
  test -f "$tmp/prefix/include/dit/protein.h"
  test -f "$tmp/prefix/lib/cmake/dit/ditProteinTargets.cmake"
  test -f "$tmp/prefix/share/dit/protein/rebuild-table.txt"
else
  test ! -e "$tmp/prefix/include/dit/protein.h"
fi

if [ "$crystal" = ON ]; then
  test -f "$tmp/prefix/include/dit/crystal.h"
  test -f "$tmp/prefix/lib/cmake/dit/ditCrystalTargets.cmake"
  test -f "$tmp/prefix/share/dit/crystal/elements.txt"
else
  test ! -e "$tmp/prefix/include/dit/crystal.h"
fi

launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# consumer SOURCE BUILD: configure and build a project against the installed prefix only.
consumer() {
  CCACHE_BASEDIR="$tmp" cmake -S "$1" -B "$2" -G Ninja \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" "${launcher[@]}" > "$2.configure.log" 2>&1 \
    || { cat "$2.configure.log"; return 1; }
  CCACHE_BASEDIR="$tmp" cmake --build "$2" > "$2.build.log" 2>&1 || { cat "$2.build.log"; return 1; }
}
consumer "$src/apps/examples" "$tmp/example"

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

# Every installed header compiles on its own (one translation unit each).
consumer "$src/tests/install/headers" "$tmp/headers"
grep "dit header check" "$tmp/headers.configure.log"

# A component this package does not know fails configure, naming it.
mkdir -p "$tmp/unknown"
cat > "$tmp/unknown/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(unknown_component LANGUAGES CXX)
find_package(dit REQUIRED COMPONENTS docking_nonsense)
CMAKE
if cmake -S "$tmp/unknown" -B "$tmp/unknown/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" > "$tmp/unknown.log" 2>&1; then
  echo "find_package(dit COMPONENTS docking_nonsense) succeeded"; cat "$tmp/unknown.log"; exit 1
fi
grep -q 'unknown component "docking_nonsense"' "$tmp/unknown.log" \
  || { echo "no clear message for an unknown component:"; cat "$tmp/unknown.log"; exit 1; }
echo "install test: an unknown component fails: $(grep -o 'dit: unknown component[^;]*' "$tmp/unknown.log" | head -1)"

if [ "$docking" = ON ]; then
  # The docking component as a chemistry pipeline uses it: dit::dit + dit::docking, installed.
  consumer "$src/apps/examples/docking_consumer" "$tmp/docking"
  ldd "$tmp/docking/pose_checks" > "$tmp/ldd-docking.txt"
  grep -q "$tmp/prefix/lib/libdit_docking.so" "$tmp/ldd-docking.txt" \
    || { echo "pose_checks does not link the installed libdit_docking.so:"; cat "$tmp/ldd-docking.txt"; exit 1; }
  fixtures="$src/tests/fixtures/docking"
  "$tmp/docking/pose_checks" "$fixtures/hca_pocket.pdb" "$fixtures/acetazolamide_hca.sdf" | tee "$tmp/checks.txt"
  grep -q "PB-valid: yes" "$tmp/checks.txt"
  echo "install test: the docking consumer built against the installed package and checked the crystal pose"
fi

if [ "$protein" = ON ]; then
  # The protein component: dit::dit + dit::protein, installed; a real chain passes its checks.
  consumer "$src/apps/examples/protein_consumer" "$tmp/protein"
  ldd "$tmp/protein/backbone_checks" > "$tmp/ldd-protein.txt"
  grep -q "$tmp/prefix/lib/libdit_protein.so" "$tmp/ldd-protein.txt" \
    || { echo "backbone_checks does not link the installed libdit_protein.so:"; cat "$tmp/ldd-protein.txt"; exit 1; }
  "$tmp/protein/backbone_checks" "$src/tests/data/protein/1LQ9_A.pdb" | tee "$tmp/protein.txt"
  grep -q "^valid" "$tmp/protein.txt"
  echo "install test: the protein consumer built against the installed package and checked a real chain"
fi

if [ "$crystal" = ON ]; then
  # The crystal component: dit::dit + dit::crystal, installed; rock salt passes its checks.
  consumer "$src/apps/examples/crystal_consumer" "$tmp/crystal"
  ldd "$tmp/crystal/cif_checks" > "$tmp/ldd-crystal.txt"
  grep -q "$tmp/prefix/lib/libdit_crystal.so" "$tmp/ldd-crystal.txt" \
    || { echo "cif_checks does not link the installed libdit_crystal.so:"; cat "$tmp/ldd-crystal.txt"; exit 1; }
  "$tmp/crystal/cif_checks" "$src/tests/data/crystal/NaCl_Fm-3m.cif" | tee "$tmp/crystal.txt"
  grep -q "^valid" "$tmp/crystal.txt"
  grep -q "Fm-3m (225)" "$tmp/crystal.txt"
  echo "install test: the crystal consumer built against the installed package and checked rock salt"
fi
