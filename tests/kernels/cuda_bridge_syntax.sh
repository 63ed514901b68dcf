#!/usr/bin/env bash
# Compile check of the translation units that only a CUDA build of torch compiles for real
# (kernels/cuda/torch_bridge.cpp: the "cuda" kernel backend; src/model/cuda_graph.cpp with
# DIT_HAVE_CUDA_BACKEND), against this machine's torch headers (Debian ships c10/cuda but not
# the generated cuda_cmake_macros.h, which is stubbed here) and the CUDA toolkit's headers:
# -fsyntax-only, so a change to the bridge fails here rather than on a GPU machine.
#   cuda_bridge_syntax.sh <c++ compiler> <source dir> <cuda include dir> <torch include dir>...
set -euo pipefail
cxx=$1 src=$2 cuda_inc=$3
shift 3
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' >"$stub/c10/cuda/impl/cuda_cmake_macros.h"
incs=()
IFS=';' read -ra cuda_dirs <<<"$cuda_inc"
for d in "${cuda_dirs[@]}" "$@"; do
  [ "$d" = /usr/include ] || incs+=(-isystem "$d")  # -isystem /usr/include breaks #include_next
done
for f in kernels/cuda/torch_bridge.cpp src/model/cuda_graph.cpp; do
  echo "== $f"
  "$cxx" -fsyntax-only -std=c++17 -Wall -Wextra -I"$src/include" -I"$src" -I"$stub" \
    "${incs[@]}" -DDIT_HAVE_CUDA_BACKEND=1 -DDIT_VERSION='"check"' -DDIT_DATA_DIR='"check"' "$src/$f"
done
echo "cuda_bridge_syntax: both compile"
