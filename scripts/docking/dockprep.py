#!/usr/bin/python3
"""Turn structure files from Debian packages into docking inputs (receptor, crystal ligand, box, start conformer).

  dockprep.py prepare --manifest data/docking/complexes.tsv --roots ROOTS.tsv --out OUT [--split dev|reserved|all]
  dockprep.py guess FILE SELECTION     # print Open Babel's SMILES guess for a ligand (to help write the manifest)
  dockprep.py poses OUT.pdbqt LIGAND.smi POSES.sdf [--name ID]   # Vina poses -> SDF (bond orders from SMILES)
  dockprep.py info CRYSTAL.sdf         # heavy atoms <TAB> rotatable bonds

ROOTS.tsv: `package<TAB>directory` lines; a manifest path P of package K is read at directory/P.
Manifest columns (tab separated, '#' comments): id split package receptor_path ligand_path ligand_sel
rec_chains rec_keep_het smiles notes. ligand_path '-' means the receptor file. ligand_sel is
RESN[:CHAIN[:RESNUM]] ('_' for a blank chain). rec_chains '*' or e.g. 'AB'. rec_keep_het: comma list of
HETATM residue names kept in the receptor (metals, cofactors, modified residues), '-' for none.
Waters and the docked ligand are never in the receptor; hydrogens are dropped from receptor and ligand
input (crystal.sdf gets its H back from RDKit with coordinates).
"""
import sys, os, gzip, argparse, subprocess, tempfile, shlex

from splits import SPLITS, in_split

from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem

WATERS = {"HOH", "WAT", "DOD", "H2O", "TIP", "TIP3", "SOL"}
AD_TYPES = {"A": "C", "C": "C", "N": "N", "NA": "N", "NS": "N", "OA": "O", "OS": "O", "O": "O", "S": "S",
            "SA": "S", "HD": "H", "HS": "H", "H": "H", "P": "P", "F": "F", "CL": "Cl", "Cl": "Cl",
            "BR": "Br", "Br": "Br", "I": "I", "ZN": "Zn", "Zn": "Zn", "MG": "Mg", "Mg": "Mg",
            "FE": "Fe", "Fe": "Fe", "CA": "Ca", "Ca": "Ca", "MN": "Mn", "Mn": "Mn"}
TWO_LETTER = {"ZN", "MG", "FE", "CA", "MN", "CL", "BR", "NA", "CD", "CU", "CO", "NI", "SE", "RB", "HG", "K"}


def open_text(path):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def guess_element(name, resname, is_het):
    n = name.strip()
    if resname.strip().upper() == n.upper() and n.upper() in TWO_LETTER:
        return n.capitalize()
    # PDB convention: element in columns 13-14 of the name field
    raw = name if len(name) == 4 else name.ljust(4)
    if raw[0].isdigit() or raw[0] == " ":
        e = raw[1]
    elif raw[0] == "H" and not is_het:
        e = "H"
    else:
        e = raw[0]
        if is_het and raw[:2].upper() in TWO_LETTER and raw[:2].upper() == resname.strip().upper():
            e = raw[:2]
    if e.isdigit():
        e = raw[1]
    return e.capitalize()


class Atom:
    __slots__ = ("het", "name", "alt", "resn", "chain", "resi", "x", "y", "z", "elem")

    def key(self):
        return (self.chain, self.resi, self.resn)


def read_pdb_like(path):
    fmt = "pdbqt" if ".pdbqt" in path else ("pqr" if ".pqr" in path else "pdb")
    atoms = []
    with open_text(path) as f:
        for line in f:
            if line.startswith("ENDMDL"):
                break
            if not line.startswith(("ATOM", "HETATM")):
                continue
            a = Atom()
            a.het = line.startswith("HETATM")
            if fmt == "pqr":
                t = line.split()
                # ATOM serial name resn [chain] resi x y z q r
                if len(t) == 11:
                    a.chain, rest = t[4], t[5:]
                else:
                    a.chain, rest = " ", t[4:]
                nm = t[2]
                a.name = (" " + nm if len(nm) < 4 else nm).ljust(4)
                a.resn, a.resi = t[3], rest[0]
                a.x, a.y, a.z = map(float, rest[1:4])
                a.alt = " "
                a.elem = guess_element(a.name, a.resn, a.het)
            else:
                a.name, a.alt, a.resn = line[12:16], line[16], line[17:20].strip()
                a.chain, a.resi = line[21], line[22:27].strip()
                a.x, a.y, a.z = float(line[30:38]), float(line[38:46]), float(line[46:54])
                if fmt == "pdbqt":
                    a.elem = AD_TYPES.get(line[77:79].strip(), line[77:79].strip().capitalize())
                else:
                    e = line[76:78].strip() if len(line) > 76 else ""
                    a.elem = e.capitalize() if e and e.isalpha() else guess_element(a.name, a.resn, a.het)
            atoms.append(a)
    return atoms


def read_mmcif(path):
    atoms, cols, in_loop, reading = [], [], False, False
    with open_text(path) as f:
        for line in f:
            s = line.strip()
            if s == "loop_":
                in_loop, cols, reading = True, [], False
                continue
            if in_loop and s.startswith("_atom_site."):
                cols.append(s.split()[0][len("_atom_site."):])
                continue
            if in_loop and cols and s.startswith(("ATOM", "HETATM")):
                reading = True
                t = shlex.split(s)
                d = dict(zip(cols, t))
                if d.get("pdbx_PDB_model_num", "1") not in ("1", "?", "."):
                    continue
                a = Atom()
                a.het = t[0] == "HETATM"
                nm = d.get("auth_atom_id", d["label_atom_id"]).strip('"')
                a.elem = d["type_symbol"].capitalize()
                a.name = (" " + nm if len(a.elem) == 1 and len(nm) < 4 else nm).ljust(4)[:4]
                alt = d.get("label_alt_id", ".")
                a.alt = " " if alt in (".", "?") else alt
                a.resn = d.get("auth_comp_id", d["label_comp_id"])
                a.chain = d.get("auth_asym_id", d["label_asym_id"])
                a.resi = d.get("auth_seq_id", d["label_seq_id"])
                a.x, a.y, a.z = float(d["Cartn_x"]), float(d["Cartn_y"]), float(d["Cartn_z"])
                atoms.append(a)
                continue
            if reading and (s.startswith("#") or s.startswith("_") or s == "loop_"):
                break
    return atoms


def read_structure(path):
    if ".cif" in path:
        return read_mmcif(path)
    return read_pdb_like(path)


def first_altlocs(atoms):
    """Keep blank altlocs and, per residue, the first non-blank altloc id seen."""
    first, out = {}, []
    for a in atoms:
        if a.alt in (" ", "", "."):
            out.append(a)
            continue
        k = a.key()
        first.setdefault(k, a.alt)
        if a.alt == first[k]:
            out.append(a)
    return out


def parse_sel(sel):
    p = sel.split(":")
    resn = p[0]
    chain = p[1] if len(p) > 1 else None
    if chain == "_":
        chain = " "
    resi = p[2] if len(p) > 2 else None
    return resn, chain, resi


def select_ligand(atoms, sel):
    resn, chain, resi = parse_sel(sel)
    cand = [a for a in atoms if a.resn == resn and (chain is None or a.chain == chain)
            and (resi is None or a.resi == resi)]
    keys = []
    for a in cand:
        if a.key() not in keys:
            keys.append(a.key())
    if not keys:
        raise SystemExit(f"no ligand residue matches {sel}")
    k = keys[0]  # first copy when the selection is ambiguous
    return [a for a in cand if a.key() == k], k, len(keys)


CHARMM_RESN = {"HSD": "HIS", "HSE": "HIS", "HSP": "HIS", "HID": "HIS", "HIE": "HIS", "HIP": "HIS",
               "CYX": "CYS", "PSER": "SEP", "PTHR": "TPO", "PTYR": "PTR"}
STD_AA = set("ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL".split())


def out_resn(r):
    r = CHARMM_RESN.get(r, r)
    if len(r) == 4 and r[:3] in STD_AA and r[3] in "NC":  # CHARMM/APBS terminal names (GLNN, PHEC)
        r = r[:3]
    return CHARMM_RESN.get(r, r)[:3]


def pdb_line(i, a, het=None):
    rec = "HETATM" if (a.het if het is None else het) else "ATOM  "
    name = a.name if len(a.name) == 4 else a.name.ljust(4)
    resi = a.resi
    icode = " "
    if resi and not resi[-1].isdigit() and resi[-1] != "-":
        resi, icode = resi[:-1], resi[-1]
    chain = (a.chain or " ")[0]
    return (f"{rec}{i % 100000:5d} {name} {out_resn(a.resn):>3} {chain}{int(resi):4d}{icode}   "
            f"{a.x:8.3f}{a.y:8.3f}{a.z:8.3f}{1.0:6.2f}{0.0:6.2f}          {a.elem.upper():>2}\n")


def ligand_mol_from_atoms(lig_atoms):
    heavy = [a for a in lig_atoms if a.elem.upper() not in ("H", "D")]
    block = "".join(pdb_line(i + 1, a, het=True) for i, a in enumerate(heavy)) + "END\n"
    m = Chem.MolFromPDBBlock(block, removeHs=False, sanitize=False, proximityBonding=True)
    if m is None:
        raise ValueError("RDKit could not read the ligand atoms")
    return m, heavy, block


def assign_from_smiles(mol, smiles):
    tmpl = Chem.MolFromSmiles(smiles)
    if tmpl is None:
        raise ValueError(f"bad SMILES {smiles}")
    if tmpl.GetNumAtoms() != mol.GetNumAtoms():
        raise ValueError(f"heavy-atom count differs: SMILES {tmpl.GetNumAtoms()} vs structure {mol.GetNumAtoms()}")
    for a in mol.GetAtoms():
        a.SetNoImplicit(False)
        a.SetNumExplicitHs(0)
    mol.UpdatePropertyCache(strict=False)
    out = AllChem.AssignBondOrdersFromTemplate(tmpl, mol)
    Chem.SanitizeMol(out)
    flat = lambda m: Chem.MolToSmiles(m, isomericSmiles=False)
    if flat(out) != flat(tmpl):
        raise ValueError(f"structure does not reproduce the SMILES: {flat(out)} vs {flat(tmpl)}")
    stereo_from_3d(out)
    return out, tmpl


def stereo_from_3d(m):
    Chem.AssignStereochemistryFrom3D(m)
    # phosphate/phosphonate "centres" only look chiral because of where the charge is drawn
    for a in m.GetAtoms():
        if a.GetSymbol() == "P":
            a.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    Chem.AssignStereochemistry(m, cleanIt=True, force=True)


def n_rotatable(m):
    from rdkit.Chem import rdMolDescriptors
    return rdMolDescriptors.CalcNumRotatableBonds(m, strict=True)


def start_conformer(smiles, name, seed=20240601):
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    ps = AllChem.ETKDGv3()
    ps.randomSeed = seed
    if AllChem.EmbedMolecule(m, ps) != 0:
        ps.useRandomCoords = True
        if AllChem.EmbedMolecule(m, ps) != 0:
            raise ValueError("ETKDG embedding failed")
    if AllChem.MMFFHasAllMoleculeParams(m):
        AllChem.MMFFOptimizeMolecule(m, maxIters=2000)
    m.SetProp("_Name", name)
    m.SetProp("SMILES", smiles)
    # check the stereo survived embedding + minimisation
    chk = Chem.Mol(m)
    stereo_from_3d(chk)
    a = Chem.MolToSmiles(Chem.RemoveHs(chk))
    b = Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    if a != b:
        raise ValueError(f"start conformer stereo differs: {a} vs {b}")
    return m


def read_manifest(path):
    rows = []
    cols = ["id", "split", "package", "receptor_path", "ligand_path", "ligand_sel", "rec_chains",
            "rec_keep_het", "smiles", "notes"]
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            t = line.rstrip("\n").split("\t")
            if t[0] == "id":
                continue
            t += [""] * (len(cols) - len(t))
            rows.append(dict(zip(cols, t)))
    return rows


def prepare_one(row, root, outdir, log):
    cid = row["id"]
    rec_path = os.path.join(root, row["receptor_path"].lstrip("/"))
    lig_path = rec_path if row["ligand_path"] in ("-", "") else os.path.join(root, row["ligand_path"].lstrip("/"))
    rec_atoms = first_altlocs(read_structure(rec_path))
    lig_src = rec_atoms if lig_path == rec_path else first_altlocs(read_structure(lig_path))
    lig_atoms, lig_key, ncopies = select_ligand(lig_src, row["ligand_sel"])
    mol, heavy, _ = ligand_mol_from_atoms(lig_atoms)
    mol, tmpl = assign_from_smiles(mol, row["smiles"])
    iso_cryst = Chem.MolToSmiles(mol)
    iso_tmpl = Chem.MolToSmiles(tmpl)
    stereo_note = "same" if iso_cryst == iso_tmpl else "differs"
    molH = Chem.AddHs(mol, addCoords=True)
    molH.SetProp("_Name", cid)
    molH.SetProp("SMILES", iso_cryst)
    molH.SetProp("source", f"{row['package']}:{row['ligand_path'] if row['ligand_path'] not in ('-','') else row['receptor_path']} {lig_key[2]} {lig_key[0]} {lig_key[1]}")

    # receptor
    chains = row["rec_chains"]
    keep = set(x for x in row["rec_keep_het"].split(",") if x and x != "-")
    lig_set = set(id(a) for a in lig_atoms) if lig_path == rec_path else set()
    out_rec, kept_het = [], set()
    for a in rec_atoms:
        if id(a) in lig_set or a.resn in WATERS or a.elem.upper() in ("H", "D"):
            continue
        if chains not in ("*", "") and a.chain not in chains:
            continue
        if lig_path == rec_path and a.key() == lig_key:
            continue
        if a.het and a.resn not in keep:
            continue
        if a.het:
            kept_het.add(a.resn)
        out_rec.append(a)
    missing_keep = keep - kept_het
    d = os.path.join(outdir, cid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "receptor.pdb"), "w") as f:
        f.write(f"REMARK   1 {cid} receptor from {row['package']}:{row['receptor_path']}\n")
        prev = None
        for i, a in enumerate(out_rec):
            if prev is not None and a.chain != prev:
                f.write("TER\n")
            prev = a.chain
            f.write(pdb_line(i + 1, a))
        f.write("TER\nEND\n")
    w = Chem.SDWriter(os.path.join(d, "crystal.sdf"))
    w.write(molH)
    w.close()
    with open(os.path.join(d, "ligand.smi"), "w") as f:
        f.write(f"{iso_cryst}\t{cid}\n")
    conf = mol.GetConformer()
    xs = [conf.GetAtomPosition(i) for i in range(mol.GetNumAtoms())]
    lo = [min(p[k] for p in xs) for k in range(3)]
    hi = [max(p[k] for p in xs) for k in range(3)]
    c = [(lo[k] + hi[k]) / 2 for k in range(3)]
    s = [hi[k] - lo[k] + 8.0 for k in range(3)]
    with open(os.path.join(d, "box.txt"), "w") as f:
        f.write(",".join(f"{v:.3f}" for v in c + s) + "\n")
    st = start_conformer(iso_cryst, cid)
    w = Chem.SDWriter(os.path.join(d, "ligand_start.sdf"))
    w.write(st)
    w.close()
    import numpy as np
    R = np.array([[a.x, a.y, a.z] for a in out_rec])
    X = np.array([[p.x, p.y, p.z] for p in xs])
    dmin = np.sqrt(((R[:, None, :] - X[None, :, :]) ** 2).sum(-1)).min(1)
    n_contact, closest = int((dmin < 4.0).sum()), float(dmin.min())
    if n_contact < 15 or closest < 2.0:
        log.write(f"{cid}: WARNING ligand has {n_contact} receptor atoms within 4 A, closest {closest:.2f} A\n")
    info = dict(id=cid, split=row["split"], n_heavy=mol.GetNumAtoms(), n_rot=n_rotatable(mol),
                contacts_4A=n_contact, closest_A=f"{closest:.2f}",
                n_rec_atoms=len(out_rec), rec_het=",".join(sorted(kept_het)) or "-",
                ligand=f"{lig_key[2]}:{lig_key[0].strip() or '_'}:{lig_key[1]}", copies=ncopies,
                stereo_vs_manifest=stereo_note, smiles=iso_cryst)
    if missing_keep:
        log.write(f"{cid}: WARNING keep-list residues not found: {','.join(sorted(missing_keep))}\n")
    if stereo_note != "same":
        log.write(f"{cid}: note: crystal stereo {iso_cryst} vs manifest {iso_tmpl}\n")
    return info


def cmd_prepare(args):
    roots = {}
    with open(args.roots) as f:
        for line in f:
            if line.strip():
                k, v = line.rstrip("\n").split("\t")
                roots[k] = v
    rows = [r for r in read_manifest(args.manifest) if in_split(r["split"], args.split)]
    if args.only:
        rows = [r for r in rows if r["id"] in args.only.split(",")]
    os.makedirs(args.out, exist_ok=True)
    infos, failed = [], []
    for r in rows:
        try:
            info = prepare_one(r, roots[r["package"]], args.out, sys.stderr)
            infos.append(info)
            print(f"ok   {r['id']:<22} heavy={info['n_heavy']:<3} rot={info['n_rot']:<3} contacts={info['contacts_4A']:<4} closest={info['closest_A']} receptor_atoms={info['n_rec_atoms']:<6} het={info['rec_het']}", file=sys.stderr)
        except Exception as e:  # keep going, report at the end
            failed.append((r["id"], str(e)))
            print(f"FAIL {r['id']}: {e}", file=sys.stderr)
    keys = ["id", "split", "n_heavy", "n_rot", "contacts_4A", "closest_A", "n_rec_atoms", "rec_het", "ligand", "copies", "stereo_vs_manifest", "smiles"]
    with open(os.path.join(args.out, "index.tsv"), "w") as f:
        f.write("\t".join(keys) + "\n")
        for i in infos:
            f.write("\t".join(str(i[k]) for k in keys) + "\n")
    if failed:
        print(f"{len(failed)} complexes failed: " + ", ".join(x for x, _ in failed), file=sys.stderr)
        return 1
    return 0


def read_pdbqt_models(path):
    """[(vina_score or None, [Atom])] for each MODEL of a Vina output PDBQT."""
    models, cur, score = [], [], None
    with open(path) as f:
        for line in f:
            if line.startswith("MODEL"):
                cur, score = [], None
            elif line.startswith("REMARK VINA RESULT:"):
                score = float(line.split()[3])
            elif line.startswith(("ATOM", "HETATM")) and cur is not None:
                a = Atom()
                a.het, a.name, a.alt, a.resn = True, line[12:16], " ", "LIG"
                a.chain, a.resi = " ", "1"
                a.x, a.y, a.z = float(line[30:38]), float(line[38:46]), float(line[46:54])
                t = line[77:79].strip()
                a.elem = AD_TYPES.get(t, t.capitalize())
                cur.append(a)
            elif line.startswith("ENDMDL") and cur is not None:
                models.append((score, cur))
                cur = None
    if cur and not models:  # a single pose without MODEL records
        models.append((score, cur))
    return models


def cmd_poses(args):
    """Vina PDBQT poses -> SDF with bond orders from the SMILES and hydrogens added with coordinates."""
    smiles = open(args.smi).read().split()[0]
    w = Chem.SDWriter(args.out)
    for i, (score, atoms) in enumerate(read_pdbqt_models(args.pdbqt)):
        mol, heavy, _ = ligand_mol_from_atoms(atoms)
        try:
            mol, _ = assign_from_smiles(mol, smiles)
            mol = Chem.AddHs(mol, addCoords=True)
            ok = "yes"
        except Exception as e:  # keep the pose (graph RMSD does not need bond orders), flag it
            print(f"pose {i + 1}: bond orders not assigned ({e})", file=sys.stderr)
            ok = "no"
        mol.SetProp("_Name", f"{args.name}_pose{i + 1}")
        if score is not None:
            mol.SetProp("vina_score", f"{score:.3f}")
        mol.SetProp("bond_orders_from_smiles", ok)
        w.write(mol)
    w.close()


def cmd_info(args):
    m = Chem.MolFromMolFile(args.sdf)
    print(f"{m.GetNumHeavyAtoms()}\t{n_rotatable(m)}")


def cmd_guess(args):
    atoms = first_altlocs(read_structure(args.file))
    lig, key, n = select_ligand(atoms, args.sel)
    mol, heavy, block = ligand_mol_from_atoms(lig)
    with tempfile.NamedTemporaryFile("w", suffix=".pdb", delete=False) as t:
        t.write(block)
    smi = subprocess.run(["obabel", "-ipdb", t.name, "-osmi"], capture_output=True, text=True).stdout.split()
    os.unlink(t.name)
    elems = {}
    for a in heavy:
        elems[a.elem] = elems.get(a.elem, 0) + 1
    print(f"{key} copies={n} heavy={len(heavy)} {elems} obabel: {smi[0] if smi else '?'}")


def main():
    RDLogger.DisableLog("rdApp.warning")
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("prepare")
    p.add_argument("--manifest", required=True)
    p.add_argument("--roots", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="all", choices=SPLITS)
    p.add_argument("--only", default="")
    g = sp.add_parser("guess")
    g.add_argument("file")
    g.add_argument("sel")
    q = sp.add_parser("poses")
    q.add_argument("pdbqt")
    q.add_argument("smi")
    q.add_argument("out")
    q.add_argument("--name", default="lig")
    i = sp.add_parser("info")
    i.add_argument("sdf")
    a = ap.parse_args()
    sys.exit({"prepare": cmd_prepare, "guess": cmd_guess, "poses": cmd_poses, "info": cmd_info}[a.cmd](a))


if __name__ == "__main__":
    main()
