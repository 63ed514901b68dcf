#!/usr/bin/python3
"""Evaluate dit-engine's crystal structure prediction on the held-out set.

For every held-out structure (split = 1) of the HDF5 file written by
scripts/crystal/prepare.py with at most --max-atoms atoms, the model samples k
cells of the same composition:

  DIT crystal sample --composition <formula> -n K -o WORK/model/<row>/ --seed S --steps T -q [-m MODEL]

which writes WORK/model/<row>/<formula>_<i>.cif (P1). The samples are compared
with the true structure as in DiffCSP: pymatgen StructureMatcher(stol=0.5,
angle_tol=10, ltol=0.3); match@1 uses sample 0, match@k any sample; RMSE is
get_rms_dist()[0] (already normalised by (V/N)^(1/3)), averaged over matched
structures (RMSE@k: the best matching sample of each structure).

Per-sample validity, computed here in Python, independently of the engine:
  structural     volume >= 0.1 A^3 and every interatomic distance, over
                 periodic images (self-images included), >= 0.5 A
  compositional  SMACT-style: all elements metals, or some choice of one
                 common oxidation state per element (pymatgen
                 Element.common_oxidation_states; 0 when the list is empty)
                 that makes the cell neutral. Also reported (notes): the
                 share neutral when atoms of one element may take different
                 common states (mixed valence, e.g. Fe3O4), and its agreement
                 with dit check's charge check.
  dit check      `DIT check FILE.cif --json OUT.json` passes every check
                 (exit 0 and "valid": true)
Space groups: spglib via pymatgen, symprec 0.1.

A random baseline is evaluated on the same compositions: uniform fractional
coordinates, angles U(60, 120) degrees (redrawn until the cell volume factor is
>= 0.3), cell volume N * (mean training volume per atom) * U(0.8, 1.2), edge
ratios U(0.8, 1.2); written with CifWriter into WORK/baseline/<row>/.

--dry-run-truth replaces the model with the true structure, every atom moved by
0.05 A in a random direction (written as CIFs into WORK/model/<row>/): a test of
this script without the engine (match rates should be ~100%).

Usage:
  /usr/bin/python3 scripts/crystal/eval.py --data crystals.h5 --dit build/dit \
      [--model M] --out docs-table.md [--k 20] [--max-atoms 20] [--limit N] \
      [--steps 50] [--seed 7] [--workdir DIR] [--dry-run-truth] [--dit-args "-t 1"]
"""

import os

# One BLAS/OpenMP thread: the work is many small matrices, and threads only
# contend on a shared machine. Must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import collections
import itertools
import json
import math
import shlex
import subprocess
import sys
import time
import warnings
from functools import lru_cache

import gemmi
import h5py
import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

warnings.filterwarnings("ignore")

MIN_DIST = 0.5     # Angstrom
MIN_VOLUME = 0.1   # Angstrom^3
SYMPREC = 0.1


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------

def load_data(path):
    with h5py.File(path, "r") as h:
        c, a = h["crystals"], h["atoms"]
        d = dict(num_atoms=c["num_atoms"][:], offset=c["offset"][:], lattice=c["lattice"][:],
                 split=c["split"][:], spacegroup=c["spacegroup"][:],
                 formula=[x.decode() if isinstance(x, bytes) else x for x in c["formula"][:]],
                 Z=a["Z"][:], frac=a["frac"][:])
    return d


def structure_at(d, i):
    o, n = int(d["offset"][i]), int(d["num_atoms"][i])
    lat = Lattice.from_parameters(*d["lattice"][i])
    return Structure(lat, [Element.from_Z(int(z)) for z in d["Z"][o:o + n]], d["frac"][o:o + n])


def mean_volume_per_atom(d, rows):
    v = [Lattice.from_parameters(*d["lattice"][i]).volume / d["num_atoms"][i] for i in rows]
    return float(np.mean(v))


# --------------------------------------------------------------------------
# validity
# --------------------------------------------------------------------------

def structural_valid(s):
    if s.volume < MIN_VOLUME:
        return False
    if len(s) > 1:
        dm = s.distance_matrix.copy()
        np.fill_diagonal(dm, np.inf)
        if dm.min() < MIN_DIST:
            return False
    # an atom and its own periodic images: the shortest lattice vector
    pts = s.lattice.get_points_in_sphere(np.zeros((1, 3)), np.zeros(3), MIN_DIST)
    return not any(p[1] > 1e-8 for p in pts)


@lru_cache(maxsize=None)
def _element_info(sym):
    el = Element(sym)
    metal = bool(el.is_metal or el.is_transition_metal or el.is_alkali or el.is_alkaline
                 or el.is_post_transition_metal or el.is_lanthanoid or el.is_actinoid)
    states = tuple(int(o) for o in el.common_oxidation_states) or (0,)
    return metal, states


def charge_balance(s):
    """2: SMACT-style neutral (one common oxidation state per element) or all
    elements metals; 1: neutral only with mixed valence (atoms of one element
    in different common states, e.g. Fe3O4); 0: neither. Cell counts."""
    amounts = s.composition.get_el_amt_dict()
    syms = sorted(amounts)
    counts = [int(round(amounts[x])) for x in syms]
    info = [_element_info(x) for x in syms]
    if all(m for m, _ in info):
        return 2
    for ox in itertools.product(*[st for _, st in info]):
        if sum(o * c for o, c in zip(ox, counts)) == 0:
            return 2
    reachable = {0}
    for (_, states), n in zip(info, counts):
        sums = {0}
        for _ in range(n):
            sums = {v + q for v in sums for q in states}
        reachable = {t + v for t in reachable for v in sums}
    return 1 if 0 in reachable else 0


def spacegroup(s):
    try:
        return SpacegroupAnalyzer(s, symprec=SYMPREC).get_space_group_number()
    except Exception:
        return 0


# --------------------------------------------------------------------------
# engine calls
# --------------------------------------------------------------------------

def run_dit_check(dit, cif, json_path):
    """(passed, names of failed checks, {name: pass}); passed is None if the
    check could not run."""
    if os.path.exists(json_path):
        os.remove(json_path)  # never read a report of an earlier run
    try:
        p = subprocess.run([dit, "check", cif, "--json", json_path],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    except Exception:
        return None, [], {}
    failed = []
    try:
        with open(json_path) as f:
            rep = json.load(f)
        valid = bool(rep.get("valid", False))
        checks = {c.get("name", "?"): c.get("pass") for c in rep.get("checks", [])}
        failed = [k for k, v in checks.items() if v is False]
    except Exception:
        if p.returncode == 2:
            return False, ["unreadable"], {}
        return None, [], {}
    if p.returncode not in (0, 1, 2):
        return None, [], {}
    return (valid and p.returncode == 0), failed, checks


def sample_command(args, formula, outdir, spacegroup=0):
    cmd = [args.dit, "crystal", "sample", "--composition", formula, "-n", str(args.k),
           "-o", outdir, "--seed", str(args.seed), "--steps", str(args.steps), "-q"]
    if args.model:
        cmd += ["-m", args.model]
    if spacegroup:  # --given-spacegroup: the true structure's, as the condition
        cmd += ["--spacegroup", str(spacegroup)]
    return cmd + shlex.split(args.dit_args)


def sample_model(args, formula, outdir, spacegroup=0):
    """Run `crystal sample`; an error text, or None. Files it did write are
    evaluated either way (missing ones count as failed samples)."""
    cmd = sample_command(args, formula, outdir, spacegroup)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return "timeout"
    if p.returncode != 0:
        lines = p.stdout.strip().splitlines()
        return f"exit {p.returncode}: {lines[-1][:200] if lines else ''}"
    return None


def perturbed_truth(truth, rng, outdir, formula, k):
    """Stub for the model: the true structure with every atom moved 0.05 A."""
    for i in range(k):
        s = truth.copy()
        v = rng.normal(size=(len(s), 3))
        v *= 0.05 / np.linalg.norm(v, axis=1, keepdims=True)
        s = Structure(s.lattice, s.species, s.cart_coords + v, coords_are_cartesian=True)
        CifWriter(s).write_file(os.path.join(outdir, f"{formula}_{i}.cif"))


def random_baseline(truth, rng, outdir, formula, k, vol_per_atom):
    n = len(truth)
    for i in range(k):
        while True:
            ang = rng.uniform(60.0, 120.0, size=3)
            ca, cb, cg = np.cos(np.radians(ang))
            f2 = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
            if f2 > 0.3 ** 2:
                break
        vol = n * vol_per_atom * rng.uniform(0.8, 1.2)
        ratio = rng.uniform(0.8, 1.2, size=3)
        scale = (vol / (np.prod(ratio) * math.sqrt(f2))) ** (1.0 / 3.0)
        lat = Lattice.from_parameters(*(ratio * scale), *ang)
        s = Structure(lat, truth.species, rng.uniform(0.0, 1.0, size=(n, 3)))
        CifWriter(s).write_file(os.path.join(outdir, f"{formula}_{i}.cif"))


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------

class Method:
    def __init__(self, name):
        self.name = name
        self.structures = 0
        self.match1, self.rms1 = 0, []
        self.matchk, self.rmsk = 0, []
        self.samples = 0
        self.unreadable = 0
        self.wrong_composition = 0
        self.struct_ok = 0
        self.comp_ok = 0
        self.comp_mixed_ok = 0
        self.check_ok = 0
        self.check_ran = 0
        self.check_tried = 0
        self.check_failed_names = collections.Counter()
        self.charge_compared = 0   # samples with a dit charge check ...
        self.charge_agree = 0      # ... that agree with charge_balance() >= 1
        self.spacegroups = collections.Counter()
        self.engine_errors = []


def evaluate_dir(method, args, row, formula, truth, outdir, matcher, details):
    method.structures += 1
    rms_list = []
    for i in range(args.k):
        cif = os.path.join(outdir, f"{formula}_{i}.cif")
        method.samples += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = Structure.from_file(cif)
        except Exception:
            method.unreadable += 1
            rms_list.append(None)
            continue
        if s.composition.reduced_composition != truth.composition.reduced_composition \
                or len(s) != len(truth):
            method.wrong_composition += 1
        try:
            r = matcher.get_rms_dist(s, truth)
        except Exception:
            r = None
        rms_list.append(None if r is None else float(r[0]))
        method.struct_ok += structural_valid(s)
        balance = charge_balance(s)
        method.comp_ok += balance == 2
        method.comp_mixed_ok += balance >= 1
        method.spacegroups[spacegroup(s)] += 1
        if args.dit_ok and i < args.dit_check_k:
            method.check_tried += 1
            ok, failed, checks = run_dit_check(args.dit, cif, cif[:-4] + ".check.json")
            if ok is not None:
                method.check_ran += 1
                method.check_ok += ok
                method.check_failed_names.update(failed)
                charge = [v for k, v in checks.items() if "charge" in k and v is not None]
                if charge:
                    method.charge_compared += 1
                    method.charge_agree += (all(charge) == (balance >= 1))
    if rms_list and rms_list[0] is not None:
        method.match1 += 1
        method.rms1.append(rms_list[0])
    matched = [r for r in rms_list if r is not None]
    if matched:
        method.matchk += 1
        method.rmsk.append(min(matched))
    details.append(dict(method=method.name, row=int(row), formula=formula, atoms=len(truth),
                        rms=rms_list))


def pct(a, b):
    return "n/a" if b == 0 else f"{100.0 * a / b:.1f}%"


def mean_or_na(x):
    return "n/a" if not x else f"{np.mean(x):.4f}"


def sg_label(n):
    if n == 0:
        return "failed"
    try:
        name = gemmi.find_spacegroup_by_number(n).short_name()
        return f"{n} R{name[1:]}" if name.startswith("H") else f"{n} {name}"
    except Exception:
        return str(n)


def sg_column(counter, total, rank):
    items = counter.most_common()
    if rank >= len(items) or total == 0:
        return ""
    n, c = items[rank]
    return f"{sg_label(n)} ({100.0 * c / total:.1f}%)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--dit", required=True, help="dit executable")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", required=True, help="markdown table")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--max-atoms", type=int, default=20)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=None, help="default: <out without .md>-work")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per `crystal sample` call")
    ap.add_argument("--dit-args", default="", help="extra arguments for `crystal sample`, e.g. '-t 1'")
    ap.add_argument("--given-spacegroup", action="store_true",
                    help="condition each structure's samples on its true space group (spglib at 0.1 A, "
                         "the data file's; crystal sample --spacegroup); structures without one sample unconditioned")
    ap.add_argument("--dry-run-truth", action="store_true",
                    help="no engine sampling: samples are the truth moved 0.05 A per atom")
    ap.add_argument("--no-dit-check", action="store_true", help="skip `dit check`")
    ap.add_argument("--dit-check-k", type=int, default=None,
                    help="run `dit check` on the first N samples of each structure only "
                         "(default: all k; each call costs ~0.5 s of start-up)")
    args = ap.parse_args()
    cmdline = " ".join(shlex.quote(x) for x in [sys.executable] + sys.argv)
    t0 = time.time()
    workdir = args.workdir or os.path.splitext(args.out)[0] + "-work"
    args.dit = os.path.abspath(args.dit) if os.path.exists(args.dit) else args.dit
    args.dit_check_k = args.k if args.dit_check_k is None else min(args.dit_check_k, args.k)
    args.dit_ok = (not args.no_dit_check) and os.access(args.dit, os.X_OK)
    if not args.dit_ok and not args.no_dit_check:
        print(f"warning: {args.dit} is not executable: no dit check", file=sys.stderr)

    d = load_data(args.data)
    train_rows = np.nonzero(d["split"] == 0)[0]
    rows = [int(i) for i in np.nonzero((d["split"] == 1) & (d["num_atoms"] <= args.max_atoms))[0]]
    n_heldout = int((d["split"] == 1).sum())
    if args.limit is not None:
        rows = rows[:args.limit]
    vpa = mean_volume_per_atom(d, train_rows)
    print(f"{len(rows)} held-out structures (<= {args.max_atoms} atoms, of {n_heldout} held out); "
          f"k = {args.k}; mean training volume per atom {vpa:.2f} A^3", flush=True)

    matcher = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
    model_name = "truth + 0.05 A noise (dry run)" if args.dry_run_truth else \
        f"model ({os.path.basename(args.model) if args.model else 'bundled'}" + \
        (", given the true space group)" if args.given_spacegroup else ")")
    model, base = Method(model_name), Method("random baseline")
    truth_sg = collections.Counter()
    details = []
    for j, row in enumerate(rows):
        formula = d["formula"][row]
        truth = structure_at(d, row)
        truth_sg[int(d["spacegroup"][row])] += 1
        rng = np.random.default_rng([args.seed, row])

        mdir = os.path.join(workdir, "model", str(row))
        os.makedirs(mdir, exist_ok=True)
        for f in os.listdir(mdir):  # samples of an earlier run must not count
            if f.startswith(formula + "_") and (f.endswith(".cif") or f.endswith(".check.json")):
                os.remove(os.path.join(mdir, f))
        if args.dry_run_truth:
            perturbed_truth(truth, rng, mdir, formula, args.k)
        else:
            given = int(d["spacegroup"][row]) if args.given_spacegroup else 0
            err = sample_model(args, formula, mdir, given)
            if err:
                model.engine_errors.append(f"{formula}: {err}")
                print(f"  {formula}: crystal sample failed: {err}", file=sys.stderr)
                if j == 0 and not any(f.endswith(".cif") for f in os.listdir(mdir)):
                    sys.exit(f"eval.py: the first `crystal sample` call wrote nothing; stopping. "
                             f"Command: {' '.join(sample_command(args, formula, mdir, given))}")
        evaluate_dir(model, args, row, formula, truth, mdir, matcher, details)

        bdir = os.path.join(workdir, "baseline", str(row))
        os.makedirs(bdir, exist_ok=True)
        random_baseline(truth, rng, bdir, formula, args.k, vpa)
        evaluate_dir(base, args, row, formula, truth, bdir, matcher, details)
        if (j + 1) % 10 == 0 or j + 1 == len(rows):
            print(f"  {j + 1}/{len(rows)} [{time.time() - t0:.0f}s] model match@1 {pct(model.match1, model.structures)}"
                  f" match@k {pct(model.matchk, model.structures)}; baseline match@k "
                  f"{pct(base.matchk, base.structures)}", flush=True)

    # ---- markdown
    L = ["# Crystal structure prediction on the held-out set", "",
         f"Command: `{cmdline}`", "",
         f"Data: `{args.data}`: {len(rows)} held-out structures with <= {args.max_atoms} atoms "
         f"(of {n_heldout} held out; formulas never seen in training), k = {args.k} samples each"
         + ("" if args.dry_run_truth else f", {args.steps} steps, seed {args.seed}") + ". "
         "Matching: pymatgen StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3); RMSE = get_rms_dist, "
         "normalised by (V/N)^(1/3), mean over matched structures (RMSE@k: best matching sample). "
         "Validity is per sample: structural = all distances over periodic images >= 0.5 A; "
         "compositional = SMACT-style: one common oxidation state per element gives charge 0, "
         "or all elements are metals (pymatgen's tables; no exemption for single elements); dit check = `dit check` passes every check.", "",
         "| method | structures | k | match@1 | RMSE@1 | match@k | RMSE@k | structural validity "
         "| compositional validity | dit check pass |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in (model, base):
        L.append(f"| {m.name} | {m.structures} | {args.k} | {pct(m.match1, m.structures)} | "
                 f"{mean_or_na(m.rms1)} | {pct(m.matchk, m.structures)} | {mean_or_na(m.rmsk)} | "
                 f"{pct(m.struct_ok, m.samples)} | {pct(m.comp_ok, m.samples)} | "
                 f"{pct(m.check_ok, m.check_ran) if args.dit_ok else 'n/a'} |")
    L.append("")
    for m in (model, base):
        notes = []
        if m.unreadable:
            notes.append(f"{m.unreadable} of {m.samples} samples missing or unreadable (counted as failures)")
        if m.wrong_composition:
            notes.append(f"{m.wrong_composition} samples with a composition other than requested")
        if args.dit_ok and m.check_ran < m.samples:
            notes.append(f"dit check ran on {m.check_ran} of {m.samples} samples"
                         + (f" ({m.check_tried} tried)" if m.check_tried != m.check_ran else ""))
        notes.append(f"compositional validity with mixed valence allowed {pct(m.comp_mixed_ok, m.samples)}")
        if m.charge_compared:
            notes.append(f"that agrees with dit check's charge check on "
                         f"{pct(m.charge_agree, m.charge_compared)} of samples")
        if m.check_failed_names:
            notes.append("dit check failures by check: " + ", ".join(
                f"{k} {v}" for k, v in m.check_failed_names.most_common()))
        small = [x for x in details if x["method"] == m.name and x["atoms"] <= 4]
        large = [x for x in details if x["method"] == m.name and x["atoms"] > 4]
        hit = lambda xs: sum(any(r is not None for r in x["rms"]) for x in xs)  # noqa: E731
        notes.append(f"match@k for cells of <= 4 atoms {pct(hit(small), len(small))} ({len(small)}), "
                     f"> 4 atoms {pct(hit(large), len(large))} ({len(large)})")
        if m.engine_errors:
            notes.append(f"{len(m.engine_errors)} `crystal sample` errors, first: {m.engine_errors[0]}")
        if notes:
            L.append(f"- {m.name}: " + "; ".join(notes) + ".")
    L += ["", f"Space groups (spglib, symprec {SYMPREC}), top 10, share of structures:", "",
          f"| rank | {model.name} | random baseline | held-out truth | training |",
          "|---:|---|---|---|---|"]
    train_sg = collections.Counter(int(x) for x in d["spacegroup"][train_rows])
    for r in range(10):
        L.append(f"| {r + 1} | {sg_column(model.spacegroups, sum(model.spacegroups.values()), r)} | "
                 f"{sg_column(base.spacegroups, sum(base.spacegroups.values()), r)} | "
                 f"{sg_column(truth_sg, len(rows), r)} | {sg_column(train_sg, len(train_rows), r)} |")
    L += ["", f"Samples: {model.samples} + {base.samples} (baseline); {time.time() - t0:.0f} s; "
          f"per-structure RMS in `{os.path.join(workdir, 'results.json')}`."]
    text = "\n".join(L) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(details, f)
    print(text)


if __name__ == "__main__":
    main()
