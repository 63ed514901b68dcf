#!/usr/bin/python3
"""Write the secondary-structure library (data/protein/ss-library.txt) that `dit protein sample`
draws from when a model takes residue secondary structure (docs/protein.md).

Data preparation only; run with Debian's /usr/bin/python3 (python3-h5py, python3-numpy):

    /usr/bin/python3 scripts/protein/make-ss-library.py --data /work/protein-data/chains.h5 \
        -o data/protein/ss-library.txt

Reads the training segments (split 0; the held-out entries never enter) of the prepared
chains.h5 (scripts/protein/prepare.py), maps the stored DSSP to 3 states (H, G, I -> H; E, B ->
E; the rest L, as the model's training data: domains/protein/data.cpp) and keeps every
--every-th segment. One line per segment: its length and its string run-length encoded
("12 L3H7L2": 3 loop, 7 helix, 2 loop residues); lines starting with '#' are comments.
"""
import argparse
import importlib.util
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("rebuild_table", os.path.join(HERE, "make-rebuild-table.py"))
rt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rt)

THREE = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}


def run_length(s):
    out, i = [], 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        out.append("%s%d" % (s[i], j - i))
        i = j
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="chains.h5 from scripts/protein/prepare.py")
    ap.add_argument("-o", "--out", default="data/protein/ss-library.txt")
    ap.add_argument("--every", type=int, default=3, help="keep every N-th training segment")
    ap.add_argument("--min-length", type=int, default=40)
    ap.add_argument("--max-length", type=int, default=256)
    a = ap.parse_args()
    with h5py.File(a.data, "r") as f:
        dssp = f["dssp"][:].tobytes().decode("ascii")
        offsets = f["offsets"][:]
        split = f["split"][:]
    lines = ["# dit-engine protein secondary-structure library: length, then the 3-state string "
             "(H helix, E strand, L loop) run-length encoded",
             "# from %s (training split only), one in %d segments of %d..%d residues; written by "
             "scripts/protein/make-ss-library.py" % (os.path.basename(a.data), a.every, a.min_length,
                                                      a.max_length)]
    kept, helix, strand, total = 0, 0, 0, 0
    train = [s for s in range(len(split)) if split[s] == 0]
    for k, s in enumerate(train):
        L = int(offsets[s + 1] - offsets[s])
        if k % a.every or not (a.min_length <= L <= a.max_length):
            continue
        ss = "".join(THREE.get(c, "L") for c in dssp[offsets[s]:offsets[s + 1]])
        lines.append("%d %s" % (L, run_length(ss)))
        kept += 1
        helix += ss.count("H")
        strand += ss.count("E")
        total += L
    lines.insert(2, "# %d segments, %d residues: %.1f%% helix, %.1f%% strand" %
                 (kept, total, 100.0 * helix / total, 100.0 * strand / total))
    rt.write_lines(a.out, lines)
    print("%d segments, helix %.3f strand %.3f" % (kept, helix / total, strand / total), file=sys.stderr)


if __name__ == "__main__":
    main()
