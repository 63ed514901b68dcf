#!/usr/bin/python3
"""Build the crystal training file (HDF5) for dit-engine's crystal domain.

Collects ordered periodic crystal structures from the locally installed Debian
data packages, reduces them to Niggli-reduced primitive cells, removes
duplicates, splits them by reduced formula into train / held-out, and writes
one HDF5 file:

  /crystals/num_atoms [S] int32      /crystals/offset [S] int64 (row in /atoms)
  /crystals/lattice [S,6] float64    a, b, c (Angstrom), alpha, beta, gamma (deg)
  /crystals/split [S] uint8          0 = train, 1 = held-out
  /crystals/spacegroup [S] int32     spglib via pymatgen, symprec 0.1 (0 = failed)
  /crystals/formula [S] str          full cell formula, elements alphabetical,
                                     count 1 omitted ("ClNa", "Fe6O8")
  /crystals/reduced_formula [S] str  pymatgen Composition.reduced_formula
  /crystals/source [S] str           "mp:<index>", "pmgtest:<file>[#i]",
                                     "avogadro:<relative path>", "ncrystal:<file>"
  /atoms/Z [A] int16                 /atoms/frac [A,3] float64 in [0,1)
  root attributes: counts (see the text report written next to the file).

Sources, in deduplication priority order:
  mp        pymatgen-test-files grid_data_files/vasp_inputs_for_grid_check.json
            (1000 Materials Project VASP inputs; entry["input"]["structure"])
  pmgtest   other *.json / *.json.gz under pymatgen-test-files that are a
            pymatgen Structure dict or a list of them
  avogadro  libavogadro-data CIFs (gemmi; pymatgen CifParser as fallback)
  ncrystal  libncrystal-data *.ncmat (minimal NCMAT parser, see read_ncmat)
Rejected (counted per source and reason): unreadable files, non-crystals,
partial occupancies ("disordered"), unknown element labels, Z > 94, atoms
closer than 0.5 A, CIFs whose expanded cell disagrees with their own
_chemical_formula_sum. Kept structures are reduced (primitive, tolerance 0.1,
then Niggli), limited to --max-atoms, and deduplicated per reduced formula with
pymatgen's StructureMatcher (default tolerances), first source wins.
Reserved: the reduced formulas of all CIFs shipped in pymatgen-test-files are
never written (kept back for a separate test set).

Usage:
  /usr/bin/python3 scripts/crystal/prepare.py -o /work/crystal-data/crystals.h5 \
      [--max-atoms 64] [--heldout-fraction 0.1] [--seed 0]
"""

import os

# One BLAS/OpenMP thread: the work is many small matrices, and threads only
# contend on a shared machine. Must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import collections
import glob
import gzip
import json
import random
import re
import time
import warnings
from fractions import Fraction

import gemmi
import h5py
import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.io.cif import CifParser
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

warnings.filterwarnings("ignore")

PMG_TEST = "/usr/share/doc/pymatgen-test-files/examples/test_files"
MP_JSON = os.path.join(PMG_TEST, "grid_data_files/vasp_inputs_for_grid_check.json")
AVOGADRO = "/usr/share/avogadro2/crystals"
NCRYSTAL = "/usr/share/NCrystal/data"

MAX_Z = 94
MIN_DIST = 0.5          # Angstrom; closer atoms mean a broken structure
PRE_REDUCE_FACTOR = 8   # cells above factor*max_atoms are not reduced (too large)
ISOTOPES = {"D": "H", "T": "H"}


class Reject(Exception):
    """A structure that cannot be used; the message is the counted reason,
    .detail an optional explanation listed per item in the report."""

    def __init__(self, reason, detail=""):
        super().__init__(reason)
        self.detail = detail


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def clean_structure(lattice, species, frac):
    """Plain ordered Structure with element species only (no properties)."""
    els = []
    for sp in species:
        sym = str(sp) if isinstance(sp, str) else getattr(sp, "symbol", str(sp))
        sym = ISOTOPES.get(sym, sym)
        try:
            els.append(Element(sym))
        except Exception:
            raise Reject("unknown element label", repr(sym))
    return Structure(lattice, els, frac)


def from_pymatgen(s):
    """Validate a pymatgen Structure and strip it to elements + coordinates."""
    if len(s) < 1:
        raise Reject("no atoms")
    if not s.is_ordered:
        raise Reject("disordered")
    return clean_structure(s.lattice, [site.specie for site in s], s.frac_coords)


def check_structure(s):
    """Reasons shared by every source. Raises Reject."""
    if len(s) < 1:
        raise Reject("no atoms")
    if max(el.Z for el in s.composition.elements) > MAX_Z:
        raise Reject(f"element Z>{MAX_Z}")
    if len(s) > 1:
        d = s.distance_matrix
        np.fill_diagonal(d, np.inf)
        if d.min() < MIN_DIST:
            raise Reject(f"atoms closer than {MIN_DIST} A")
    elif min(s.lattice.abc) < MIN_DIST:
        raise Reject(f"atoms closer than {MIN_DIST} A")


def cell_formula(s):
    """Full cell formula, elements sorted by symbol, count 1 omitted."""
    counts = collections.Counter(site.specie.symbol for site in s)
    return "".join(f"{el}{n if n > 1 else ''}" for el, n in sorted(counts.items()))


# --------------------------------------------------------------------------
# readers: each yields (source_name, structure-or-Reject)
# --------------------------------------------------------------------------

def read_mp(stats):
    with open(MP_JSON) as f:
        entries = json.load(f)
    for i, e in enumerate(entries):
        try:
            d = e["input"]["structure"]
            yield f"mp:{i}", from_pymatgen(Structure.from_dict(d))
        except Reject as r:
            yield f"mp:{i}", r
        except Exception as ex:
            yield f"mp:{i}", Reject("unreadable", f"{type(ex).__name__} {str(ex)[:60]}")


def _is_structure_dict(x):
    return isinstance(x, dict) and x.get("@class") == "Structure"


def read_pmg_json(stats):
    """Optional: other pymatgen Structure dicts shipped as test files."""
    files = sorted(glob.glob(os.path.join(PMG_TEST, "**/*.json"), recursive=True)
                   + glob.glob(os.path.join(PMG_TEST, "**/*.json.gz"), recursive=True))
    for path in files:
        if os.path.samefile(path, MP_JSON):
            continue
        rel = os.path.relpath(path, PMG_TEST)
        stats["pmgtest_json_files_scanned"] += 1
        try:
            op = gzip.open if path.endswith(".gz") else open
            with op(path, "rt") as f:
                data = json.load(f)
        except Exception:
            stats["pmgtest_json_files_unparsable"] += 1
            continue
        if _is_structure_dict(data):
            items = [(f"pmgtest:{rel}", data)]
        elif isinstance(data, list) and data and all(_is_structure_dict(x) for x in data):
            items = [(f"pmgtest:{rel}#{i}", x) for i, x in enumerate(data)]
        else:
            continue  # not a structure file: not counted as tried
        for name, d in items:
            try:
                yield name, from_pymatgen(Structure.from_dict(d))
            except Reject as r:
                yield name, r
            except Exception as ex:
                yield name, Reject("unreadable", f"{type(ex).__name__} {str(ex)[:60]}")


def _cif_symops(block):
    for tag in ("_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz"):
        vals = list(block.find_values(tag))
        if vals:
            return [gemmi.cif.as_string(v) for v in vals]
    return []


def check_formula_sum(formula_sum, s):
    """Reject a CIF whose expanded cell disagrees with its own
    _chemical_formula_sum (bad setting, or atoms such as H not located)."""
    if not formula_sum or formula_sum in ("?", "."):
        return
    try:
        comp = Composition(formula_sum.replace(" ", ""))
    except Exception:
        return
    if not comp.reduced_composition.almost_equals(s.composition.reduced_composition, rtol=0.01):
        raise Reject("composition differs from _chemical_formula_sum")


def read_cif_gemmi(path, notes):
    """P1 structure from a CIF via gemmi. Raises Reject, or ValueError to ask
    for the pymatgen fallback."""
    doc = gemmi.cif.read_file(path)
    blocks = [b for b in doc if len(b.find_values("_atom_site_fract_x")) > 0]
    if not blocks:
        raise ValueError("no block with _atom_site_fract_x")
    if len(blocks) > 1:
        notes["avogadro: multi-block CIF, first block used"] += 1
    block = blocks[0]
    small = gemmi.make_small_structure_from_block(block)
    # gemmi 0.5 expands by the H-M symbol only; check it against the listed
    # symmetry operations (origin choice etc.) and trust the operations.
    triplets = _cif_symops(block)
    sg = small.find_spacegroup()
    if triplets:
        ops_sg = gemmi.find_spacegroup_by_ops(gemmi.GroupOps([gemmi.Op(t) for t in triplets]))
        if ops_sg is None:
            raise ValueError("symmetry operations not a tabulated setting")
        if sg is None or sg.hall != ops_sg.hall:
            notes["avogadro: space-group setting taken from symops, not H-M"] += 1
            small.spacegroup_hm = ops_sg.xhm()
            small.setup_cell_images()
            if small.find_spacegroup() is None or small.find_spacegroup().hall != ops_sg.hall:
                raise ValueError("could not set space group from symops")
    elif sg is None:
        if small.spacegroup_hm.strip():
            raise ValueError(f"unknown space group {small.spacegroup_hm!r}")
        notes["avogadro: no symmetry given, P1 assumed"] += 1
    if any(site.occ < 0.995 for site in small.sites):
        raise Reject("disordered")
    sites = small.get_all_unit_cell_sites()
    if len(sites) == 0:
        raise Reject("no atoms")
    symbols = []
    for site in sites:
        z = site.element.atomic_number
        if z == 0:
            raise Reject("unknown element label", f"label {site.label!r}, type {site.type_symbol!r}")
        symbols.append(Element.from_Z(z).symbol)
    c = small.cell
    lat = Lattice.from_parameters(c.a, c.b, c.c, c.alpha, c.beta, c.gamma)
    frac = [[s.fract.x, s.fract.y, s.fract.z] for s in sites]
    s = clean_structure(lat, symbols, frac)
    fsum = block.find_value("_chemical_formula_sum")
    check_formula_sum(gemmi.cif.as_string(fsum) if fsum is not None else None, s)
    return s


def read_cif_pymatgen(path):
    parser = CifParser(path)
    structs = parser.get_structures(primitive=False)
    if not structs:
        raise ValueError("no structure")
    s = from_pymatgen(structs[0])
    blocks = list(parser.as_dict().values())
    check_formula_sum(blocks[0].get("_chemical_formula_sum") if blocks else None, s)
    return s


def read_avogadro(stats):
    files = sorted(glob.glob(os.path.join(AVOGADRO, "**/*.cif"), recursive=True))
    for path in files:
        name = "avogadro:" + os.path.relpath(path, AVOGADRO)
        try:
            yield name, read_cif_gemmi(path, stats)
            stats["avogadro: read with gemmi"] += 1
            continue
        except Reject as r:
            yield name, r
            continue
        except Exception as ex:
            why = str(ex).split("\n")[0].replace(path, os.path.basename(path))[:80]
            stats["avogadro: gemmi failed -> pymatgen fallback"] += 1
        try:
            s = read_cif_pymatgen(path)
            stats["avogadro: read with pymatgen fallback"] += 1
            yield name, s
        except Reject as r:
            yield name, r
        except Exception as ex:
            yield name, Reject("unreadable (gemmi and pymatgen)",
                               f"gemmi: {why}; pymatgen: {type(ex).__name__} {str(ex)[:60]}")


def _ncmat_number(tok):
    return float(Fraction(tok)) if "/" in tok else float(tok)


def _ncmat_values(tokens, n):
    """Numbers with NCMAT's '!!' (= same as the previous value)."""
    out = []
    for t in tokens:
        if t == "!!":
            if not out:
                raise ValueError("'!!' without a previous value")
            out.append(out[-1])
        else:
            out.append(_ncmat_number(t))
    if len(out) != n:
        raise ValueError(f"expected {n} values, got {len(out)}")
    return out


def read_ncmat(path):
    """Minimal NCMAT (v1-v7) reader: @CELL and @ATOMPOSITIONS.

    @ATOMPOSITIONS lists every atom of the unit cell (not an asymmetric unit),
    so @SPACEGROUP is informational only. Comments start with '#'."""
    sections = collections.defaultdict(list)
    cur = None
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("NCMAT"):
                continue
            if line.startswith("@"):
                cur = line[1:].split()[0].upper()
                sections[cur]  # create
                continue
            if cur is not None:
                sections[cur].append(line.split())
    if "CELL" not in sections or "ATOMPOSITIONS" not in sections:
        state = " ".join(" ".join(t) for t in sections.get("STATEOFMATTER", [])) or "not given"
        raise Reject(f"not a crystal (no @CELL; state of matter: {state})")
    lengths = angles = None
    for toks in sections["CELL"]:
        key, vals = toks[0].lower(), toks[1:]
        if key == "cubic":
            a = _ncmat_values(vals, 1)[0]
            lengths, angles = [a, a, a], [90.0, 90.0, 90.0]
        elif key == "lengths":
            lengths = _ncmat_values(vals, 3)
        elif key == "angles":
            angles = _ncmat_values(vals, 3)
        else:
            raise ValueError(f"unknown @CELL keyword {key!r}")
    if lengths is None or angles is None:
        raise ValueError("incomplete @CELL")
    symbols, frac = [], []
    for toks in sections["ATOMPOSITIONS"]:
        if len(toks) != 4:
            raise ValueError(f"bad @ATOMPOSITIONS line {' '.join(toks)!r}")
        symbols.append(toks[0])
        frac.append([_ncmat_number(t) for t in toks[1:]])
    sg = None
    if sections.get("SPACEGROUP"):
        sg = int(sections["SPACEGROUP"][0][0])
    lat = Lattice.from_parameters(*lengths, *angles)
    return clean_structure(lat, symbols, frac), sg


def read_ncrystal(stats):
    for path in sorted(glob.glob(os.path.join(NCRYSTAL, "*.ncmat"))):
        name = "ncrystal:" + os.path.basename(path)
        try:
            s, sg = read_ncmat(path)
        except Reject as r:
            yield name, r
            continue
        except Exception as ex:
            yield name, Reject("unparsable NCMAT", str(ex)[:80])
            continue
        if sg is not None:
            try:
                got = SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number()
                stats["ncrystal: @SPACEGROUP agrees with spglib" if got == sg
                      else "ncrystal: @SPACEGROUP differs from spglib"] += 1
            except Exception:
                pass
        yield name, s


# --------------------------------------------------------------------------
# reserved formulas
# --------------------------------------------------------------------------

def reserved_formulas(stats):
    files = sorted(glob.glob(os.path.join(PMG_TEST, "**/*.cif"), recursive=True)
                   + glob.glob(os.path.join(PMG_TEST, "**/*.cif.gz"), recursive=True))
    out = set()
    for path in files:
        stats["reserved: cif files tried"] += 1
        try:
            structs = CifParser(path).get_structures(primitive=False)
            if not structs:
                raise ValueError("no structures")
            for s in structs:
                out.add(s.composition.reduced_formula)
            stats["reserved: read by pymatgen"] += 1
            continue
        except Exception:
            stats["reserved: pymatgen failed"] += 1
        # Do not let an unreadable reserved file leak its formula: try gemmi.
        try:
            op = gzip.open if path.endswith(".gz") else open
            with op(path, "rt", errors="replace") as f:
                doc = gemmi.cif.read_string(f.read())
            got = False
            for b in doc:
                if len(b.find_values("_atom_site_fract_x")) == 0:
                    continue
                small = gemmi.make_small_structure_from_block(b)
                comp = collections.Counter()
                for site in small.get_all_unit_cell_sites():
                    if site.element.atomic_number > 0:
                        comp[Element.from_Z(site.element.atomic_number).symbol] += site.occ
                if comp:
                    out.add(Composition(comp).reduced_formula)
                    got = True
            stats["reserved: recovered by gemmi" if got else "reserved: unreadable"] += 1
        except Exception:
            stats["reserved: unreadable"] += 1
    return out


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def reduce_cell(s, stats):
    try:
        p = s.get_primitive_structure(tolerance=0.1)
    except Exception:
        stats["primitive reduction failed (original kept)"] += 1
        p = s
    try:
        n = p.get_reduced_structure("niggli")
    except Exception:
        stats["niggli reduction failed (primitive kept)"] += 1
        n = p
    n = Structure(n.lattice, n.species, np.mod(n.frac_coords, 1.0))
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--max-atoms", type=int, default=64)
    ap.add_argument("--heldout-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()

    notes = collections.Counter()
    reserved = reserved_formulas(notes)
    print(f"reserved formulas: {len(reserved)} from pymatgen-test-files CIFs", flush=True)

    per = collections.OrderedDict()   # source -> Counter
    kept = []                         # dicts
    groups = collections.defaultdict(list)  # reduced formula -> kept structures
    matcher = StructureMatcher()      # ltol 0.2, stol 0.3, angle_tol 5
    totals = collections.Counter()
    failures = []                     # "source name: reason (detail)" for the report

    readers = [("mp", read_mp), ("pmgtest", read_pmg_json),
               ("avogadro", read_avogadro), ("ncrystal", read_ncrystal)]
    for src, reader in readers:
        c = per.setdefault(src, collections.Counter())
        for name, item in reader(notes):
            c["tried"] += 1
            if isinstance(item, Reject):
                c["failed"] += 1
                c[f"failed: {item}"] += 1
                failures.append(f"{name}: {item}" + (f" ({item.detail})" if item.detail else ""))
                continue
            s = item
            try:
                check_structure(s)
            except Reject as r:
                c["failed"] += 1
                c[f"failed: {r}"] += 1
                failures.append(f"{name}: {r}")
                continue
            c["read"] += 1
            rf = s.composition.reduced_formula
            if rf in reserved:
                c["reserved_formulas_excluded"] += 1
                totals["reserved_formulas_excluded"] += 1
                continue
            if len(s) > PRE_REDUCE_FACTOR * args.max_atoms:
                c["too_large"] += 1
                totals["too_large"] += 1
                notes[f"too large before reduction (> {PRE_REDUCE_FACTOR} x max atoms)"] += 1
                continue
            r = reduce_cell(s, notes)
            if len(r) > args.max_atoms:
                c["too_large"] += 1
                totals["too_large"] += 1
                continue
            if any(matcher.fit(r, k["structure"]) for k in groups[rf]):
                c["duplicates_removed"] += 1
                totals["duplicates_removed"] += 1
                continue
            try:
                sg = SpacegroupAnalyzer(r, symprec=0.1).get_space_group_number()
            except Exception:
                notes["space group failed (0 written)"] += 1
                sg = 0
            entry = dict(structure=r, source=name, reduced_formula=rf,
                         formula=cell_formula(r), spacegroup=sg)
            groups[rf].append(entry)
            kept.append(entry)
            c["kept"] += 1
        print(f"{src}: " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())),
              f"[{time.time() - t0:.0f}s]", flush=True)

    # split by reduced formula
    formulas = sorted({k["reduced_formula"] for k in kept})
    rng = random.Random(args.seed)
    rng.shuffle(formulas)
    n_held = int(round(args.heldout_fraction * len(formulas)))
    held = set(formulas[:n_held])
    for k in kept:
        k["split"] = 1 if k["reduced_formula"] in held else 0

    # write HDF5
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.output + ".tmp"
    S = len(kept)
    num_atoms = np.array([len(k["structure"]) for k in kept], dtype=np.int32)
    offset = np.zeros(S, dtype=np.int64)
    if S:
        offset[1:] = np.cumsum(num_atoms, dtype=np.int64)[:-1]
    lattice = np.array([list(k["structure"].lattice.abc) + list(k["structure"].lattice.angles)
                        for k in kept], dtype=np.float64).reshape(S, 6)
    Z = np.concatenate([[site.specie.Z for site in k["structure"]] for k in kept]).astype(np.int16)
    frac = np.concatenate([k["structure"].frac_coords for k in kept]).astype(np.float64)
    frac = np.mod(frac, 1.0)
    frac[frac >= 1.0] = 0.0
    strdt = h5py.string_dtype(encoding="utf-8")

    train = int(sum(k["split"] == 0 for k in kept))
    attrs = collections.OrderedDict()
    for src, c in per.items():
        for key, v in sorted(c.items()):
            attrs[f"{src}.{key}"] = int(v)
    attrs["reserved_formulas"] = len(reserved)
    attrs["reserved_formulas_excluded"] = int(totals["reserved_formulas_excluded"])
    attrs["duplicates_removed"] = int(totals["duplicates_removed"])
    attrs["too_large"] = int(totals["too_large"])
    attrs["kept"] = S
    attrs["train"] = train
    attrs["heldout"] = S - train
    attrs["heldout_formulas"] = len(held)
    attrs["formulas"] = len(formulas)
    attrs["max_atoms"] = args.max_atoms
    attrs["heldout_fraction"] = args.heldout_fraction
    attrs["seed"] = args.seed
    for key, v in sorted(notes.items()):
        attrs[f"note.{key}"] = int(v)
    attrs["created_by"] = "scripts/crystal/prepare.py"

    with h5py.File(tmp, "w") as h:
        g = h.create_group("crystals")
        g.create_dataset("num_atoms", data=num_atoms)
        g.create_dataset("offset", data=offset)
        g.create_dataset("lattice", data=lattice)
        g.create_dataset("split", data=np.array([k["split"] for k in kept], dtype=np.uint8))
        g.create_dataset("spacegroup", data=np.array([k["spacegroup"] for k in kept], dtype=np.int32))
        for key in ("formula", "reduced_formula", "source"):
            g.create_dataset(key, data=[k[key] for k in kept], dtype=strdt)
        a = h.create_group("atoms")
        a.create_dataset("Z", data=Z)
        a.create_dataset("frac", data=frac.reshape(-1, 3))
        for key, v in attrs.items():
            # e.g. "avogadro.failed.atoms_closer_than_0.5_A"
            name = re.sub(r"[^A-Za-z0-9_.>]+", "_", key.replace(": ", ".")).strip("_")
            h.attrs[name] = v
    os.replace(tmp, args.output)

    # report
    lines = [f"# {args.output}", f"# created by scripts/crystal/prepare.py in {time.time() - t0:.0f} s",
             f"# args: max_atoms={args.max_atoms} heldout_fraction={args.heldout_fraction} seed={args.seed}", ""]
    for src, c in per.items():
        lines.append(f"[{src}]")
        for key in ["tried", "read", "failed"]:
            lines.append(f"  {key}: {c[key]}")
        for key, v in sorted(c.items()):
            if key.startswith("failed: "):
                lines.append(f"    {key[8:]}: {v}")
        for key in ["reserved_formulas_excluded", "too_large", "duplicates_removed", "kept"]:
            lines.append(f"  {key}: {c[key]}")
    lines += ["", "[totals]"]
    for key in ["reserved_formulas_excluded", "too_large", "duplicates_removed", "kept",
                "train", "heldout", "formulas", "heldout_formulas"]:
        lines.append(f"  {key}: {attrs[key]}")
    lines += ["", "[notes]"] + [f"  {k}: {v}" for k, v in sorted(notes.items())]
    split = np.array([k["split"] for k in kept])
    lines += ["", "[num_atoms histogram]  bin: train heldout"]
    edges = [1, 2, 4, 8, 12, 16, 20, 24, 30, 40, 48, 64, max(64, args.max_atoms)]
    lo = 1
    for hi in sorted(set(edges)):
        if hi < lo:
            continue
        m = (num_atoms >= lo) & (num_atoms <= hi)
        lines.append(f"  {lo:3d}-{hi:3d}: {int((m & (split == 0)).sum()):5d} {int((m & (split == 1)).sum()):5d}")
        lo = hi + 1
    for lim in (20, 30):
        lines.append(f"  <= {lim} atoms: train {int(((num_atoms <= lim) & (split == 0)).sum())}, "
                     f"heldout {int(((num_atoms <= lim) & (split == 1)).sum())}")
    lines += ["", f"[failed items] ({len(failures)})"] + [f"  {x}" for x in failures]
    lines += ["", f"[reserved formulas] ({len(reserved)}, from pymatgen-test-files CIFs)",
              "  " + " ".join(sorted(reserved))]
    report = os.path.splitext(args.output)[0] + ".report.txt"
    with open(report, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[4:]))
    print(f"wrote {args.output} and {report}")


if __name__ == "__main__":
    main()
