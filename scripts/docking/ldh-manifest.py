#!/usr/bin/python3
"""Writes the manifest of the extra TRAINING complexes: every lactate/malate dehydrogenase chain of
theseus-examples (/usr/share/doc/theseus/examples/ldh, development data in ../shared/DATA.md) with
a bound nucleotide or substrate, in the format of data/docking/complexes.tsv (split "train").

  /usr/bin/python3 scripts/docking/ldh-manifest.py > data/docking/ldh-train.tsv
  DIT_DOCK_MANIFEST=data/docking/ldh-train.tsv scripts/docking/prepare-complexes.sh OUT train

One row per ligand copy. Chains that data/docking/complexes.tsv already uses with the same ligand
are left out (they are development complexes). A substrate (oxamate, pyruvate, ...) keeps the
chain's nicotinamide cofactor in the receptor, as the development rows do. SMILES carry no
stereo: dockprep.py takes it from the crystal coordinates.
"""
import glob
import gzip
import os
import sys

LDH = "/usr/share/doc/theseus/examples/ldh"
HERE = os.path.dirname(os.path.abspath(__file__))
# Protonation for pH ~7, as in complexes.tsv.
SMILES = {
    "NAD": "NC(=O)c1ccc[n+](c1)C1OC(COP(=O)([O-])OP(=O)([O-])OCC2OC(n3cnc4c(N)ncnc43)C(O)C2O)C(O)C1O",
    "NAI": "NC(=O)C1=CN(C=CC1)C1OC(COP(=O)([O-])OP(=O)([O-])OCC2OC(n3cnc4c(N)ncnc43)C(O)C2O)C(O)C1O",
    "A3D": "CC(=O)c1ccc[n+](c1)C1OC(COP(=O)([O-])OP(=O)([O-])OCC2OC(n3cnc4c(N)ncnc43)C(O)C2O)C(O)C1O",
    "NAP": "NC(=O)c1ccc[n+](c1)C1OC(COP(=O)([O-])OP(=O)([O-])OCC2OC(n3cnc4c(N)ncnc43)C(OP(=O)([O-])[O-])C2O)C(O)C1O",
    "APR": "Nc1ncnc2c1ncn2C1OC(COP(=O)([O-])OP(=O)([O-])OCC2OC(O)C(O)C2O)C(O)C1O",
    "AMP": "Nc1ncnc2c1ncn2C1OC(COP(=O)([O-])[O-])C(O)C1O",
    "OXM": "NC(=O)C(=O)[O-]",
    "PYR": "CC(=O)C(=O)[O-]",
    "OXQ": "[O-]C(=O)c1nonc1O",
    "MLT": "[O-]C(=O)CC(O)C(=O)[O-]",
    "FBP": "O=P([O-])([O-])OCC1OC(O)(COP(=O)([O-])[O-])C(O)C1O",
}
COFACTORS = ("NAD", "NAI", "A3D", "NAP")
SUBSTRATES = ("OXM", "PYR", "OXQ", "MLT")


def residues(path):
    """Hetero residues in file order: (resn, chain, resi)."""
    seen = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("HETATM"):
                key = (line[17:20].strip(), line[21], line[22:27].strip())
                if key not in seen:
                    seen.append(key)
    return seen


def main():
    files = sorted(glob.glob(os.path.join(LDH, "*.pdb.gz")))
    if not files:
        sys.exit(f"ldh-manifest: no *.pdb.gz under {LDH}: install theseus-examples (apt-get install theseus-examples)")
    used = set()  # (file, resn) of the development rows
    with open(os.path.join(HERE, "..", "..", "data", "docking", "complexes.tsv")) as f:
        for line in f:
            t = line.rstrip("\n").split("\t")
            if len(t) > 5 and t[2] == "theseus-examples":
                used.add((os.path.basename(t[3]), t[5].split(":")[0]))
    print("# Extra TRAINING complexes (split 'train'): LDH/MDH chains of theseus-examples with a bound")
    print("# nucleotide or substrate; written by scripts/docking/ldh-manifest.py (see there). Same columns")
    print("# as complexes.tsv. Development data (../shared/DATA.md): never mixed with the reserved set.")
    print("id\tsplit\tpackage\treceptor_path\tligand_path\tligand_sel\trec_chains\trec_keep_het\tsmiles\tnotes")
    for path in files:
        name = os.path.basename(path)
        res = residues(path)
        cof = sorted({r[0] for r in res if r[0] in COFACTORS})
        for resn, chain, resi in res:
            if resn not in SMILES or (name, resn) in used:
                continue
            keep = ",".join(cof) if resn in SUBSTRATES and cof else "-"
            cid = f"ldhx_{name.split('.')[0].lower()}_{resn.lower()}_{resi}"
            sel = f"{resn}:{chain if chain != ' ' else '_'}:{resi}"
            print(f"{cid}\ttrain\ttheseus-examples\t{path.lstrip('/')}\t-\t{sel}\t*\t{keep}\t{SMILES[resn]}\t"
                  f"{resn} copy {resi} of {name}")


if __name__ == "__main__":
    sys.exit(main())
