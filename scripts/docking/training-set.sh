#!/usr/bin/env bash
# Assembles the docking model's training folder (docs/docking.md, "Held-out split") as symlinks to
# prepared complexes, for `dit dock-train --data OUT`:
#   scripts/docking/training-set.sh OUT DEV_DATA [EXTRA_DATA] [--with-heldout | --extra-only]
# DEV_DATA: prepare-complexes.sh ... dev (or all); its `dev` complexes are taken, its `heldout` ones
# only with --with-heldout (the model that is bundled; the held-out check trains without them), and
# never a reserved one; with --extra-only none of DEV_DATA (a model that has seen no development
# complex, to measure on all of them). EXTRA_DATA: DIT_DOCK_MANIFEST=data/docking/ldh-train.tsv prepare-complexes.sh
# ... train; its complexes with at least MIN_CONTACTS (15) receptor atoms within 4 A of the ligand
# (crystal-contact copies on the surface are left out).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT DEV_DATA [EXTRA_DATA] [--with-heldout | --extra-only]" >&2
  exit 2
fi
out=$1 dev=$(cd "$2" && pwd)
extra="" heldout=0 dev_too=1
for a in "${@:3}"; do
  case "$a" in
    --with-heldout) heldout=1 ;;
    --extra-only) dev_too=0 ;;
    *) extra=$(cd "$a" && pwd) ;;
  esac
done
min=${MIN_CONTACTS:-15}
mkdir -p "$out"
n=0
link() {  # DATA_DIR AWK_CONDITION (columns by their header name: c["split"], c["contacts_4A"])
  local ids
  ids=$(awk -F'\t' "NR==1 {for (i = 1; i <= NF; i++) c[\$i] = i; next} ($2) {print \$1}" "$1/index.tsv")
  for i in $ids; do
    [ -f "$1/$i/receptor.pdb" ] || { echo "training-set: $1/$i/receptor.pdb missing" >&2; exit 1; }
    ln -sfn "$1/$i" "$out/$i"
    n=$((n + 1))
  done
}
[ "$dev_too" = 0 ] || link "$dev" "\$c[\"split\"]==\"dev\" || ($heldout && \$c[\"split\"]==\"heldout\")"
[ -z "$extra" ] || link "$extra" "\$c[\"split\"]==\"train\" && \$c[\"contacts_4A\"]>=$min"
echo "training-set: $n complexes in $out" >&2
