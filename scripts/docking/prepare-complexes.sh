#!/usr/bin/env bash
# Builds docking inputs from structures shipped in Debian packages (see data/docking/complexes.tsv).
#   scripts/docking/prepare-complexes.sh OUT_DIR [dev|heldout|reserved|train|all]      (default: all)
# Splits: dev = the development complexes (the held-out ones included), heldout = the development
# complexes kept out of the model's training (docs/docking.md, "Held-out split"), reserved =
# evaluation only, train = the extra training chains of DIT_DOCK_MANIFEST=data/docking/ldh-train.tsv.
# For each complex writes OUT_DIR/<id>/{receptor.pdb,crystal.sdf,ligand.smi,box.txt,ligand_start.sdf}
# and OUT_DIR/index.tsv (heavy atoms, rotatable bonds, pocket contacts, receptor hetero groups).
# Tools (python3-rdkit, openbabel) are apt-installed when missing. Data packages are apt-installed when
# they are light; packages that would drag in big dependency trees (R, OpenMM, libcifpp) are only
# downloaded and unpacked (apt-get download + dpkg -x) into $DIT_DOCK_PKG_CACHE (default OUT_DIR/.pkgs).
# Environment: DIT_DOCK_ONLY=id1,id2 to prepare a subset; DIT_DOCK_MANIFEST=FILE another manifest
# (default data/docking/complexes.tsv).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 OUT_DIR [dev|reserved|all]" >&2
  exit 2
fi
out=$1
split=${2:-all}
case "$split" in dev|heldout|reserved|train|all) ;; *) echo "split must be dev, heldout, reserved, train or all" >&2; exit 2;; esac
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
manifest=${DIT_DOCK_MANIFEST:-$repo/data/docking/complexes.tsv}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${DIT_DOCK_PKG_CACHE:-$out/.pkgs}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

apt_install() {
  local missing=()
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "prepare-complexes: apt-get install ${missing[*]}" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
  fi
}

# tools
apt_install python3-rdkit python3-numpy openbabel

# packages unpacked instead of installed (their Depends pull in R / OpenMM / boost-dev)
unpack_only=" r-bioc-rcpi python3-pdbfixer libcifpp-dev "

# The split rule of scripts/docking/splits.py, in awk (Python packages are not installed yet).
packages=$(awk -F'\t' -v s="$split" '!/^#/ && $1!="id" && NF>=3 && (s=="all" || $2==s || (s=="dev" && $2=="heldout")) {print $3}' "$manifest" | sort -u)
roots=$out/.package-roots.tsv
: > "$roots"
for p in $packages; do
  if installed "$p"; then
    printf '%s\t/\n' "$p" >> "$roots"
  elif [[ "$unpack_only" == *" $p "* ]]; then
    dir=$cache/$p
    if [ ! -f "$dir/.unpacked" ]; then
      mkdir -p "$cache/debs"
      (cd "$cache/debs" && rm -f "${p}"_*.deb && apt-get download -q -o APT::Sandbox::User=root "$p" >&2)
      rm -rf "$dir" && mkdir -p "$dir"
      dpkg -x "$cache"/debs/"${p}"_*.deb "$dir"
      touch "$dir/.unpacked"
    fi
    printf '%s\t%s\n' "$p" "$dir" >> "$roots"
  else
    apt_install "$p"
    printf '%s\t/\n' "$p" >> "$roots"
  fi
done

/usr/bin/python3 "$here/dockprep.py" prepare --manifest "$manifest" --roots "$roots" --out "$out" \
  --split "$split" ${DIT_DOCK_ONLY:+--only "$DIT_DOCK_ONLY"}
echo "prepare-complexes: wrote $(($(wc -l < "$out/index.tsv") - 1)) complexes to $out (index: $out/index.tsv)" >&2
