#!/usr/bin/env bash
# Installs every Debian package dit-engine needs to build, run and test. Idempotent: packages
# already present are skipped, so a second run costs a few seconds.
#   scripts/install-deps.sh           core + science + test dependencies
#   scripts/install-deps.sh --core    only what building and running `dit image sample` needs
#                                     (the README's first command): about a quarter less to
#                                     download and unpack; the science components and the tests
#                                     are switched off at configure time until the full set is in
#   scripts/install-deps.sh --eval    everything above + the data-preparation and evaluation tools
#                                     (never used at run time): promod3 and its structure_db,
#                                     mkdssp, TMalign, pymatgen, gemmi's Python module and the crystal
#                                     data packages (docs/protein-data.md, crystal.md)
#   DIT_DEPS_QUIET=1 ...              less apt output
set -euo pipefail

core=(
  # toolchain
  build-essential cmake ninja-build pkg-config ccache
  # LibTorch (CPU, with the OpenMP OpenBLAS that makes it fast), oneDNN (prepacked fp32/bf16
  # linear layers), zlib, PNG, JSON, CLI, logs, HDF5 (--h5), TOML (batch jobs)
  libtorch-dev libopenblas0-openmp libdnnl-dev zlib1g-dev libpng-dev libstb-dev nlohmann-json3-dev
  libcli11-dev libfmt-dev libspdlog-dev libhdf5-dev libtomlplusplus-dev
)
packages=(
  "${core[@]}"
  # fuzzing (scripts/fuzz.sh): clang and its libFuzzer runtime
  clang libclang-rt-14-dev
  # science components (optional at build time; switched off with a message when missing)
  libopenmm-dev libopenmm-plugins librdkit-dev rdkit-data libboost-dev libhdf5-dev libsymspg-dev
  # docking: receptors with gemmi (its mmCIF reader needs PEGTL); the Amber ff14SB XML that the
  # build turns into the refinement's pocket force field
  gemmi-dev tao-pegtl-dev python3-simtk
  # batch jobs: TOML job files; clusters: a real local SLURM for the cluster tests, OpenMPI
  libtomlplusplus-dev slurm-wlm munge openmpi-bin
  # tests and benchmarks (h5py reads our H5MD files back)
  python3-h5py hdf5-tools
  libgtest-dev libgmock-dev libbenchmark-dev python3-torch python3-numpy
  # data: Fashion-MNIST (IDX, gz)
  dataset-fashion-mnist
)

case "${1:-}" in
  --core) packages=("${core[@]}") ;;
  --eval) packages+=(python3-promod3 promod3-data dssp tm-align python3-scipy python3-pymatgen
                    # crystals: the sources of scripts/crystal/prepare.py, and gemmi for it and eval.py
                    python3-gemmi libavogadro-data pymatgen-test-files libncrystal-data) ;;
  "") ;;
  *) echo "install-deps: unknown argument '$1' (use --core, --eval, or nothing for every package)" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
