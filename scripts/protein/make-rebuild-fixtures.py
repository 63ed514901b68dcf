#!/usr/bin/python3
"""Write the test fixtures of the backbone rebuild/relaxation tests: a few real chains as small PDB
files (N, CA, C, O and, except glycine, CB) in tests/data/protein/rebuild/.

    /usr/bin/python3 scripts/protein/make-rebuild-fixtures.py --heldout data/protein/heldout.txt

The chains come from promod3-data's structure_db and are HELD OUT (their PDB id is in the
held-out list), so they were not used to build data/protein/rebuild-table.txt. One chain per
length window, the first in a fixed random order (--seed) with no chain break (every consecutive
CA-CA <= 4.2 A). structure_db's CB is promod3's reconstruction from N, CA, C, not a measured atom.
"""
import argparse
import os
import sys

import numpy as np

WINDOWS = [(60, 80), (95, 130), (280, 320)]
THREE = {"A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY",
         "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER",
         "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL"}


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--heldout", default=os.path.join(root, "data/protein/heldout.txt"))
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("-o", "--outdir", default=os.path.join(root, "tests/data/protein/rebuild"))
    args = ap.parse_args()
    held = {l.split()[0].upper() for l in open(args.heldout) if l.strip() and not l.startswith("#")}
    import promod3.loop as L
    db = L.LoadStructureDB()
    os.makedirs(args.outdir, exist_ok=True)
    todo = list(WINDOWS)
    for i in np.random.RandomState(args.seed).permutation(db.GetNumCoords()):
        if not todo:
            break
        info = db.GetCoordInfo(int(i))
        win = [w for w in todo if w[0] <= info.size <= w[1]]
        if info.id.upper() not in held or not win:
            continue
        bb = db.GetBackboneList(int(i))
        seq = bb.GetSequence()
        if any(a not in THREE for a in seq):
            continue
        ca = np.array([tuple(bb.GetCA(k)) for k in range(len(bb))])
        if (np.linalg.norm(ca[1:] - ca[:-1], axis=1) > 4.2).any():
            continue
        todo.remove(win[0])
        name = "%s_%s" % (info.id.upper(), info.chain_name)
        lines = ["REMARK   1 %s chain %s from promod3-data structure_db (held out); CB reconstructed by promod3"
                 % (info.id.upper(), info.chain_name)]
        serial = 1
        for k, aa in enumerate(seq):
            atoms = [("N", bb.GetN), ("CA", bb.GetCA), ("C", bb.GetC), ("O", bb.GetO)]
            if aa != "G":
                atoms.append(("CB", bb.GetCB))
            for atom, get in atoms:
                x, y, z = tuple(get(k))
                lines.append("ATOM  %5d  %-3s %3s A%4d    %8.3f%8.3f%8.3f  1.00  0.00           %s"
                             % (serial, atom, THREE[aa], k + 1, x, y, z, atom[0]))
                serial += 1
        lines += ["TER", "END"]
        path = os.path.join(args.outdir, name + ".pdb")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("wrote %s (%d residues)" % (path, len(seq)), file=sys.stderr)


if __name__ == "__main__":
    main()
