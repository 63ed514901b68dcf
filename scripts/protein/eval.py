#!/usr/bin/python3
"""Evaluation table for generated protein backbones, against real held-out chains and a random-walk
baseline with ideal geometry (scripts/protein/random_walk.py).

  /usr/bin/python3 scripts/protein/eval.py [--samples DIR_OR_LIST] [--lengths 50,75,100,125,150]
      --data /work/protein-data/chains.h5 --out OUT.md [--dit build/dit] [-n 10]
      [--novelty-ref 200] [--workers 2] [--seed 0] [--quick] [--no-real] [--no-baseline]

Inputs
  --samples  a folder of PDB files named len{L}_{i}.pdb (as `dit protein sample -o DIR` writes), or a
             text file listing PDB paths (one per line; length from the len{L}_ name, else the residue
             count). H5/H5MD input is not read (yet): pass the PDB folder. Without --samples only the
             real and baseline rows are computed. Files are read for N, CA, C, O, CB of the first
             model; every file is rewritten to a normalised PDB (with the HEADER line mkdssp 4.x needs)
             before mkdssp and TMalign see it. Samples of a length not in --lengths are ignored.
  rows       method "model" (the samples), "real" (held-out chains of the h5 file, split 1, length
             within L +/- 5, n per length picked with --seed), "random-walk" (n per length).

Metrics (per method x length, and "all" pooled over lengths)
  pass       fraction for which `DIT check FILE.pdb` exits 0 (only with --dit; original file for
             samples, the written PDB for real/baseline rows); exit code only, nothing parsed.
  helix/strand/coil  mkdssp 4.2 classic DSSP output (`mkdssp --output-format dssp IN.pdb OUT.dssp`),
             3 states: H,G,I -> helix; E,B -> strand; everything else (T,S,P,blank) -> coil; the
             fraction per structure, averaged over structures.
  Rg         radius of gyration of CA (A), mean +/- sd over structures; Rg/ref = Rg / (2.2 N^0.38).
  TM pair    diversity: mean TM-score over all pairs i<j of the same length, `TMalign i j`, the score
             "normalized by length of Chain_1" (structure i). Lower = more diverse.
  SS agree   with --ss-h5 (the --h5 file of the run): per model structure, the fraction of residues whose
             mkdssp 3-state letter is the letter it was conditioned on (dit protein sample --ss).
  novelty    for each structure, the max TM-score (normalized by the structure itself, Chain_1) over a
             fixed random subset of --novelty-ref TRAINING chains (split 0) with length within +/-30% of
             L (the same subset for every method); mean over structures. Lower = more novel.
Outputs: OUT.md (markdown table + the command), OUT.tsv (same rows), OUT.samples.tsv (one line per structure).
"""
import argparse
import concurrent.futures as cf
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import random_walk  # noqa: E402

ATOMS = ("N", "CA", "C", "O", "CB")
HELIX, STRAND = set("HGI"), set("EB")


# ------------------------------------------------------------------ structures

def read_pdb(path):
    """First model's N, CA, C, O, CB per residue -> (xyz [L,5,3] with NaN for missing CB, sequence)."""
    res = {}
    order = []
    three = {v: k for k, v in random_walk.THREE.items()}
    with open(path) as f:
        for line in f:
            if line.startswith("ENDMDL"):
                break
            if not (line.startswith("ATOM") or line.startswith("HETATM")):
                continue
            name = line[12:16].strip()
            if name not in ATOMS:
                continue
            alt = line[16]
            if alt not in (" ", "A"):
                continue
            key = (line[21], line[22:27])
            if key not in res:
                res[key] = [np.full((5, 3), np.nan), three.get(line[17:20].strip(), "X")]
                order.append(key)
            res[key][0][ATOMS.index(name)] = [float(line[30:38]), float(line[38:46]), float(line[46:54])]
    xyz = np.array([res[k][0] for k in order]).reshape(-1, 5, 3)
    seq = "".join(res[k][1] for k in order)
    return xyz, seq


def rg_ca(xyz):
    ca = xyz[:, 1]
    return float(np.sqrt(((ca - ca.mean(0)) ** 2).sum(1).mean()))


def run_dssp(pdb, tmpdir):
    out = os.path.join(tmpdir, os.path.basename(pdb) + ".dssp")
    p = subprocess.run(["mkdssp", "--output-format", "dssp", pdb, out], capture_output=True, text=True)
    if p.returncode != 0 or not os.path.exists(out):
        return None
    ss = []
    started = False
    with open(out) as f:
        for line in f:
            if line.startswith("  #  RESIDUE"):
                started = True
                continue
            if started and len(line) > 16 and line[13] != "!":
                ss.append(line[16])
    os.remove(out)
    return "".join(ss)


TM_RE = re.compile(r"TM-score=\s*([0-9.]+)\s*\(if normalized by length of Chain_1")


def tmalign(a, b):
    p = subprocess.run(["TMalign", a, b], capture_output=True, text=True)
    m = TM_RE.search(p.stdout)
    return float(m.group(1)) if m else float("nan")


def dit_check(dit, pdb):
    p = subprocess.run([dit, "check", pdb], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return p.returncode == 0


# ------------------------------------------------------------------ inputs

def list_samples(spec):
    if spec.endswith((".h5", ".hdf5", ".h5md")):
        sys.exit("eval.py: H5/H5MD samples are not read yet; pass the folder of PDB files")
    if os.path.isdir(spec):
        return sorted(os.path.join(spec, f) for f in os.listdir(spec) if f.lower().endswith(".pdb"))
    base = os.path.dirname(os.path.abspath(spec))
    with open(spec) as f:
        return [p if os.path.isabs(p) else os.path.join(base, p)
                for p in (line.strip() for line in f) if p and not p.startswith("#")]


def sample_length(path, xyz):
    m = re.search(r"len(\d+)_", os.path.basename(path))
    return int(m.group(1)) if m else len(xyz)


def load_h5(path):
    import h5py
    f = h5py.File(path, "r")
    return f, f["offsets"][:], f["lengths"][:], f["split"][:]


def h5_chain(f, offsets, s):
    xyz = f["coords"][offsets[s]:offsets[s + 1]].astype(np.float64)
    seq = f["sequence"][offsets[s]:offsets[s + 1]].tobytes().decode()
    name = f["names"][s].decode()
    return xyz, seq, name


# ------------------------------------------------------------------ main

def fmt(x, d=2):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else ("%.*f" % (d, x))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", help="folder of len{L}_{i}.pdb files, or a text file listing PDB paths")
    ap.add_argument("--lengths", default="50,75,100,125,150")
    ap.add_argument("--data", default="/work/protein-data/chains.h5")
    ap.add_argument("--out", required=True, help="OUT.md (also writes OUT.tsv and OUT.samples.tsv)")
    ap.add_argument("--dit", help="dit binary: adds the pass column (exit code of `dit check FILE`)")
    ap.add_argument("-n", type=int, default=10, help="real and random-walk structures per length")
    ap.add_argument("--novelty-ref", type=int, default=200, help="training chains per length for novelty")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="3 per length, 20 novelty references")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--keep", help="keep the written PDB files in this folder")
    ap.add_argument("--ss-h5", help="the --h5 file of the sampling run: adds the SS agree column (mkdssp's "
                    "3 states against the strings the samples were conditioned on, dit protein sample --ss)")
    args = ap.parse_args()
    if args.quick:
        args.n = min(args.n, 3)
        args.novelty_ref = min(args.novelty_ref, 20)
    lengths = [int(x) for x in args.lengths.split(",")]
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="dit-protein-eval-")
    work = args.keep or tmp
    os.makedirs(work, exist_ok=True)
    f, offsets, seg_len, split = load_h5(args.data)
    rng = np.random.default_rng(args.seed)

    # structures: dict(method, length, name, src (file for dit check), pdb (normalised), xyz)
    items = []

    def add(method, L, name, xyz, seq, src=None):
        d = os.path.join(work, method)
        os.makedirs(d, exist_ok=True)
        pdb = os.path.join(d, "%s.pdb" % name)
        random_walk.write_pdb(pdb, xyz, seq)
        items.append(dict(method=method, length=L, name=name, src=src or pdb, pdb=pdb, xyz=xyz, n_res=len(xyz)))

    ss_given = {}  # sample name -> the string it was conditioned on
    if args.ss_h5:
        import h5py
        with h5py.File(args.ss_h5, "r") as h:
            par = h["parameters/protein"].attrs
            strings = [x.decode() if isinstance(x, bytes) else str(x) for x in par.get("secondary_structure_strings", [])]
            lengths_run, per_length = [int(x) for x in par["lengths"]], int(par["per_length"])
        k = 0
        for L in lengths_run:
            for i in range(per_length):
                if k < len(strings):
                    ss_given["len%d_%d" % (L, i)] = strings[k]
                k += 1
    if args.samples:
        for p in list_samples(args.samples):
            xyz, seq = read_pdb(p)
            L = sample_length(p, xyz)
            if L in lengths and len(xyz) > 0:
                add("model", L, os.path.splitext(os.path.basename(p))[0], xyz, seq, src=p)
    if not args.no_real:
        for L in lengths:
            cand = np.nonzero((split == 1) & (np.abs(seg_len - L) <= 5))[0]
            for s in rng.choice(cand, size=min(args.n, len(cand)), replace=False):
                xyz, seq, name = h5_chain(f, offsets, int(s))
                add("real", L, "len%d_%s" % (L, name), xyz, seq)
    if not args.no_baseline:
        for L in lengths:
            for i in range(args.n):
                xyz = random_walk.random_backbone(L, np.random.default_rng([args.seed, L, i]))
                add("random-walk", L, "len%d_%d" % (L, i), xyz, None)
    # novelty references: the same training chains for every method
    refs = {}
    for L in lengths:
        cand = np.nonzero((split == 0) & (np.abs(seg_len - L) <= 0.3 * L))[0]
        pick = np.random.default_rng([args.seed, 7, L]).choice(cand, size=min(args.novelty_ref, len(cand)), replace=False)
        refs[L] = []
        d = os.path.join(work, "train-ref")
        os.makedirs(d, exist_ok=True)
        for s in pick:
            xyz, seq, name = h5_chain(f, offsets, int(s))
            pdb = os.path.join(d, name + ".pdb")
            if not os.path.exists(pdb):
                random_walk.write_pdb(pdb, xyz, seq)
            refs[L].append(pdb)
    print("%d structures (%s), novelty references %s per length; written in %.1f s"
          % (len(items), ", ".join("%s %d" % (m, sum(1 for it in items if it["method"] == m))
                                     for m in ("model", "real", "random-walk")),
             "/".join(str(len(refs[L])) for L in lengths), time.time() - t0), flush=True)

    # jobs
    with cf.ThreadPoolExecutor(max_workers=args.workers) as ex:
        fut_dssp = {ex.submit(run_dssp, it["pdb"], tmp): k for k, it in enumerate(items)}
        fut_check = {ex.submit(dit_check, args.dit, it["src"]): k for k, it in enumerate(items)} if args.dit else {}
        groups = {}
        for k, it in enumerate(items):
            groups.setdefault((it["method"], it["length"]), []).append(k)
        fut_pair = {}
        for key, ks in groups.items():
            for a in range(len(ks)):
                for b in range(a + 1, len(ks)):
                    fut_pair[ex.submit(tmalign, items[ks[a]]["pdb"], items[ks[b]]["pdb"])] = key
        fut_nov = {}
        for k, it in enumerate(items):
            for r in refs[it["length"]]:
                fut_nov[ex.submit(tmalign, it["pdb"], r)] = k
        total = len(fut_dssp) + len(fut_check) + len(fut_pair) + len(fut_nov)
        print("%d jobs (%d mkdssp, %d dit check, %d pairwise TMalign, %d novelty TMalign) on %d workers"
              % (total, len(fut_dssp), len(fut_check), len(fut_pair), len(fut_nov), args.workers), flush=True)
        for fu, k in fut_dssp.items():
            ss = fu.result()
            it = items[k]
            if ss is None or not ss:
                it["helix"] = it["strand"] = it["coil"] = float("nan")
                it["dssp_failed"] = True
            else:
                n = len(ss)
                it["helix"] = sum(c in HELIX for c in ss) / n
                it["strand"] = sum(c in STRAND for c in ss) / n
                it["coil"] = 1.0 - it["helix"] - it["strand"]
                given = ss_given.get(it["name"]) if it["method"] == "model" else None
                if given and len(given) == n:
                    three = ["H" if c in HELIX else "E" if c in STRAND else "L" for c in ss]
                    scored = [(a, b) for a, b in zip(given.replace("-", "L"), three) if a != "?"]
                    it["ss_agree"] = sum(a == b for a, b in scored) / max(1, len(scored))
        for fu, k in fut_check.items():
            items[k]["pass"] = 1.0 if fu.result() else 0.0
        pair_tm = {}
        for fu, key in fut_pair.items():
            pair_tm.setdefault(key, []).append(fu.result())
        for fu, k in fut_nov.items():
            items[k]["novelty"] = max(items[k].get("novelty", 0.0), fu.result())
    for it in items:
        it["rg"] = rg_ca(it["xyz"])
        it["rg_ref"] = it["rg"] / (2.2 * it["n_res"] ** 0.38)
    t_jobs = time.time() - t0

    # table
    methods = [m for m in ("model", "real", "random-walk") if any(it["method"] == m for it in items)]
    rows = []
    for m in methods:
        for L in lengths + ["all"]:
            sel = [it for it in items if it["method"] == m and (L == "all" or it["length"] == L)]
            if not sel:
                continue
            pairs = [x for (mm, LL), v in pair_tm.items() if mm == m and (L == "all" or LL == L) for x in v]
            mean = lambda key: float(np.nanmean([it.get(key, np.nan) for it in sel]))
            rg = np.array([it["rg"] for it in sel])
            rows.append(dict(
                method=m, length=L, n=len(sel),
                pass_frac=mean("pass") if args.dit else None,
                helix=mean("helix"), strand=mean("strand"), coil=mean("coil"),
                dssp_failed=sum(1 for it in sel if it.get("dssp_failed")),
                rg_mean=float(rg.mean()), rg_sd=float(rg.std(ddof=1)) if len(rg) > 1 else 0.0,
                rg_ref=mean("rg_ref"),
                tm_pair=float(np.nanmean(pairs)) if pairs else float("nan"), n_pairs=len(pairs),
                novelty=mean("novelty") if any("novelty" in it for it in sel) else float("nan"),
                ss_agree=mean("ss_agree") if any("ss_agree" in it for it in sel) else float("nan")))
    cmd = "/usr/bin/python3 " + " ".join(shlex.quote(a) for a in sys.argv)
    base = args.out[:-3] if args.out.endswith(".md") else args.out
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    hdr = ["method", "length", "n", "pass", "helix", "strand", "coil", "Rg (A)", "Rg/ref", "TM pair", "novelty"]
    if ss_given:
        hdr.append("SS agree")
    with open(args.out, "w") as o:
        o.write("<!-- written by scripts/protein/eval.py; %s -->\n\n" % time.strftime("%Y-%m-%d %H:%M"))
        o.write("| " + " | ".join(hdr) + " |\n|" + "|".join(["---"] * len(hdr)) + "|\n")
        for r in rows:
            o.write("| %s | %s | %d | %s | %s | %s | %s | %.1f ± %.1f | %s | %s | %s |%s\n" % (
                r["method"], r["length"], r["n"], fmt(r["pass_frac"]), fmt(r["helix"]), fmt(r["strand"]),
                fmt(r["coil"]), r["rg_mean"], r["rg_sd"], fmt(r["rg_ref"]), fmt(r["tm_pair"]), fmt(r["novelty"]),
                (" %s |" % fmt(r["ss_agree"])) if ss_given else ""))
        o.write("\nhelix/strand/coil: mkdssp 3-state fractions (H,G,I / E,B / rest), mean over structures; "
                "Rg: CA radius of gyration, mean ± sd; Rg/ref: Rg / (2.2 N^0.38); TM pair: mean pairwise "
                "TM-score (TMalign, normalized by Chain_1) within a length; novelty: mean over structures of "
                "the max TM-score to %s training chains of length within ±30%% (fixed subset per length); "
                "pass: fraction with `dit check` exit 0 (- = not run). real = held-out chains of length L ± 5.%s\n"
                % ("/".join(str(len(refs[L])) for L in lengths),
                   " SS agree: fraction of residues whose mkdssp 3-state letter is the one the sample was "
                   "conditioned on (--ss-h5; '?' residues left out)." if ss_given else ""))
        fails = sum(r["dssp_failed"] for r in rows if r["length"] == "all")
        if fails:
            o.write("\nmkdssp failed on %d structures (left out of the DSSP columns).\n" % fails)
        o.write("\nCommand: `%s` (%.0f s, %d workers)\n" % (cmd, t_jobs, args.workers))
    keys = ["method", "length", "n", "pass_frac", "helix", "strand", "coil", "rg_mean", "rg_sd", "rg_ref",
            "tm_pair", "n_pairs", "novelty", "dssp_failed", "ss_agree"]
    with open(base + ".tsv", "w") as o:
        o.write("\t".join(keys) + "\n")
        for r in rows:
            o.write("\t".join("" if r[k] is None else (("%.4f" % r[k]) if isinstance(r[k], float) else str(r[k]))
                              for k in keys) + "\n")
    skeys = ["method", "length", "name", "n_res", "pass", "helix", "strand", "coil", "rg", "novelty", "ss_agree", "src"]
    with open(base + ".samples.tsv", "w") as o:
        o.write("\t".join(skeys) + "\n")
        for it in items:
            if not args.keep and it["method"] != "model":
                it["src"] = ""
            o.write("\t".join(("%.4f" % it[k]) if isinstance(it.get(k), float) else str(it.get(k, ""))
                              for k in skeys) + "\n")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print(open(args.out).read())
    print("wrote %s, %s.tsv, %s.samples.tsv in %.1f s" % (args.out, base, base, time.time() - t0))


if __name__ == "__main__":
    main()
