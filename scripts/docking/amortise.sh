#!/usr/bin/env bash
# Training poses from the engine's own physics search (stage 2 of the docking model, docs/docking.md):
# for each development pocket, PER_POCKET ligands of rdkit-data's cdk2.sdf (<= 30 heavy atoms,
# different ligands for each pocket) are docked with random starts (--model none) and the top pose
# is kept, in OUT/<pocket>/{receptor.pdb, box.txt -> the dev complex, poses.sdf}.
#   scripts/docking/amortise.sh DEV_DIR OUT_DIR [DIT]     (DEV_DIR: prepare-complexes.sh ... dev)
# Then: dit dock-train --data DEV_DIR --data OUT_DIR ... (see docs/docking.md).
set -euo pipefail
dev=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
dit=${3:-build/dit}
per=${PER_POCKET:-3}
/usr/bin/python3 - "$dev" "$out" "$per" <<'PY'
import os, sys
from rdkit import Chem
dev, out, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
mols = [m for m in Chem.SDMolSupplier('/usr/share/RDKit/Contrib/Fastcluster/testdata/cdk2.sdf', removeHs=False)
        if m is not None and m.GetNumHeavyAtoms() <= 30]
k = 0
for d in sorted(x for x in os.listdir(dev) if not x.startswith('.') and os.path.isdir(os.path.join(dev, x))):
    o = os.path.join(out, d)
    os.makedirs(o, exist_ok=True)
    w = Chem.SDWriter(os.path.join(o, 'ligands.sdf'))
    for _ in range(per):
        w.write(mols[k % len(mols)])
        k += 1
    w.close()
    for f in ('receptor.pdb', 'box.txt'):
        if not os.path.lexists(os.path.join(o, f)):
            os.symlink(os.path.join(dev, d, f), os.path.join(o, f))
PY
for d in "$out"/*/; do
  "$dit" dock --receptor "$d/receptor.pdb" --ligand "$d/ligands.sdf" --box "$(cat "$d/box.txt")" \
    -n 20 --mc-steps 15 --top 1 --model none -o "$d/poses.sdf" -t 1 -q
done
