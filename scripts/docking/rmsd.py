#!/usr/bin/python3
"""Symmetry-corrected heavy-atom RMSD of docked poses to a crystal ligand, WITHOUT superposition.

  scripts/docking/rmsd.py CRYSTAL.sdf POSES.sdf [--names]

Prints one RMSD (Angstrom, 3 decimals) per pose in POSES.sdf, in file order ('nan' for a pose that
cannot be read or matched). Atoms are matched by molecular-graph isomorphism on heavy atoms with
element labels only (bond orders, aromaticity, charges and hydrogens ignored, as in spyrmsd/obrms), so a
pose whose bond orders were perceived differently (e.g. after PDBQT -> SDF) is still matched; the RMSD is
the minimum over all graph automorphisms (symmetric groups: phenyls, carboxylates, phosphates, ...).
The coordinates are used as they are: the pose and the crystal ligand must share the receptor frame.
"""
import sys
import numpy as np
from rdkit import Chem, RDLogger


def heavy_graph(m):
    """Heavy atoms only, all bonds single and non-aromatic, no charges: a pure element-labelled graph."""
    m = Chem.RWMol(m)
    for a in reversed(list(m.GetAtoms())):
        if a.GetAtomicNum() == 1:
            m.RemoveAtom(a.GetIdx())
    for b in m.GetBonds():
        b.SetBondType(Chem.BondType.SINGLE)
        b.SetIsAromatic(False)
    for a in m.GetAtoms():
        a.SetIsAromatic(False)
        a.SetFormalCharge(0)
        a.SetNoImplicit(True)
        a.SetNumExplicitHs(0)
        a.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    m = m.GetMol()
    m.UpdatePropertyCache(strict=False)
    return m


def coords(m):
    return np.array(m.GetConformer().GetPositions())


def automorphism_maps(ref):
    # matches of the reference graph onto itself give every symmetry-equivalent atom ordering
    return [np.array(t) for t in ref.GetSubstructMatches(ref, uniquify=False, useChirality=False, maxMatches=1000000)]


def pose_rmsd(ref, ref_xyz, autos, pose):
    g = heavy_graph(pose)
    if g.GetNumAtoms() != ref.GetNumAtoms():
        raise ValueError(f"pose has {g.GetNumAtoms()} heavy atoms, crystal {ref.GetNumAtoms()}")
    m = g.GetSubstructMatch(ref)  # one correspondence ref -> pose ...
    if not m:
        raise ValueError("pose graph does not match the crystal graph")
    xyz = coords(g)[np.array(m)]  # pose coordinates in reference atom order
    # ... then every automorphism of the reference: ref atom i <-> pose atom matched to auto[i]
    best = min(float(np.sqrt(((ref_xyz - xyz[a]) ** 2).sum(1).mean())) for a in autos)
    return best


def main():
    RDLogger.DisableLog("rdApp.*")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    names = "--names" in sys.argv
    crystal = next(iter(Chem.SDMolSupplier(args[0], sanitize=False, removeHs=False)))
    if crystal is None:
        sys.exit(f"cannot read {args[0]}")
    ref = heavy_graph(crystal)
    ref_xyz = coords(ref)
    autos = automorphism_maps(ref)
    for i, pose in enumerate(Chem.SDMolSupplier(args[1], sanitize=False, removeHs=False)):
        try:
            if pose is None:
                raise ValueError("unreadable pose")
            r = f"{pose_rmsd(ref, ref_xyz, autos, pose):.3f}"
        except ValueError as e:
            print(f"rmsd.py: pose {i + 1}: {e}", file=sys.stderr)
            r = "nan"
        print(f"{pose.GetProp('_Name') if names and pose is not None else ''}{chr(9) if names else ''}{r}")


if __name__ == "__main__":
    main()
