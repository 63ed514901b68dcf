#!/usr/bin/python3
"""What the OpenMM refinement changes, on the DEVELOPMENT complexes only (the ranking weight is
chosen here; the reserved complexes are never used for it).

  /usr/bin/python3 scripts/docking/refine-ablation.py --data DATA_DIR --out OUT_DIR \
      [--dit build/dit] [--split dev] [--weights 0,0.02,0.05,0.1,0.2,0.5,1] [--extra "-t 1"]
      [--population-weights 0.25,0.5,1,2] [--model-weights 0.5,1,2,5,10 --model M]

For each complex of the split: one `dit dock --top 10 --refine none` run (the search's 20
distinct candidates, unrefined) and one `--top 10 --refine openmm` run (the same candidates,
refined: the search is deterministic for a seed). The production ranking (--top 5) chooses from
the 10 candidates with dit_search_rank < 10; this script re-ranks exactly those offline by
affinity + w * (mm_interaction + mm_strain) for each weight, and reports top-1 / top-5 success
(symmetry-corrected heavy-atom RMSD < 2 A, scripts/docking/rmsd.py), PB-validity of the top-1
pose (PB-valid poses rank first, as dock() does), the median shift of the heavy atoms and the
time the refinement adds. The population rows rank by the production score (refined, w = 0.02;
and unrefined) minus wp * ln(dit_population), the number of starts whose search visited the pose
(--population-weight of dit dock). With --model-weights (and a docking model in --extra, or the
bundled one), the refined pass also reports each pose's model loss (`--model-score`) and the
model rows rank by the production score + wm * dit_model_loss (--model-weight of dit dock).
Writes OUT_DIR/ablation.md.
"""
import argparse
import os
import statistics
import subprocess
import sys

from splits import ids as split_ids

HERE = os.path.dirname(os.path.abspath(__file__))


def rmsds(crystal, poses):
    out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "rmsd.py"), crystal, poses],
                         capture_output=True, text=True, check=True).stdout.split()
    return [float(x) for x in out]


def read_tags(sdf):
    """SD tags of every record, in file order."""
    records, cur, key = [], {}, None
    with open(sdf) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("$$$$"):
                records.append(cur)
                cur, key = {}, None
            elif line.startswith(">"):
                key = line[line.find("<") + 1:line.rfind(">")]
            elif key is not None:
                if line.strip():
                    cur[key] = line.strip()
                key = None
    return records


def cpu_time(path):
    user, system, _ = open(path).read().split()
    return float(user) + float(system)


def dock(a, src, out_dir, refine):
    os.makedirs(out_dir, exist_ok=True)
    box = open(os.path.join(src, "box.txt")).read().strip()
    poses = os.path.join(out_dir, "poses.sdf")
    cmd = ["/usr/bin/time", "-f", "%U %S %e", "-o", os.path.join(out_dir, "time.txt"), a.dit, "dock",
           "--receptor", os.path.join(src, "receptor.pdb"), "--ligand", os.path.join(src, "ligand_start.sdf"),
           "--box", box, "--top", "10", "--refine", refine, "-o", poses, "-q"] + a.extra.split()
    if a.model_weights and refine == "openmm":
        cmd += ["--model-score", "--model-score-draws", str(a.model_score_draws)]
    if not os.path.exists(poses):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"{src}: dit dock failed: {r.stderr.strip()}")
    recs = read_tags(poses)
    rm = rmsds(os.path.join(src, "crystal.sdf"), poses)
    for rec, r in zip(recs, rm):
        rec["rmsd"] = r
    return recs, cpu_time(os.path.join(out_dir, "time.txt"))


def ranked(recs, key):
    pool = [r for r in recs if int(r["dit_search_rank"]) < 10]
    return sorted(pool, key=lambda r: (0 if r.get("pb_valid") == "1" else 1, key(r)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dit", default=os.path.join(HERE, "..", "..", "build", "dit"))
    ap.add_argument("--split", default="dev")
    ap.add_argument("--weights", default="0,0.02,0.05,0.1,0.2,0.5,1")
    ap.add_argument("--extra", default="-t 1")
    ap.add_argument("--population-weights", default="0.25,0.5,1,2")
    ap.add_argument("--model-weights", default="", help="e.g. 0.5,1,2,5,10 (needs a model)")
    ap.add_argument("--model-score-draws", type=int, default=8)
    a = ap.parse_args()
    if a.split == "reserved" or a.split == "all":
        sys.exit("refine-ablation: tuning on the reserved complexes is not allowed (use --split dev)")
    ids = split_ids(os.path.join(a.data, "index.tsv"), a.split)
    weights = [float(w) for w in a.weights.split(",")]
    plain, refined, cpu = {}, {}, {"none": [], "openmm": []}
    for cid in ids:
        src = os.path.join(a.data, cid)
        plain[cid], c0 = dock(a, src, os.path.join(a.out, "none", cid), "none")
        refined[cid], c1 = dock(a, src, os.path.join(a.out, "openmm", cid), "openmm")
        cpu["none"].append(c0)
        cpu["openmm"].append(c1)
        print(f"{cid:22s} unrefined top1 {ranked(plain[cid], lambda r: float(r['dit_affinity']))[0]['rmsd']:.2f}"
              f"  cpu {c0:.1f}s / {c1:.1f}s", file=sys.stderr)

    n = len(ids)
    lines = [f"Development complexes ({a.split}, {n}): the 10 candidates of the production ranking (dit_search_rank < 10),",
             "re-ranked offline; PB-valid poses first. RMSD: symmetry-corrected heavy atoms, no superposition.", "",
             "| poses | ranking | top-1 < 2 A | top-5 < 2 A | top-1 PB-valid | median shift (A) | CPU s / complex (mean) |",
             "|---|---|---|---|---|---|---|"]

    def row(label, rank, data, shift, cpu_s):
        t1 = sum(1 for cid in ids if rank(data[cid])[0]["rmsd"] < 2)
        t5 = sum(1 for cid in ids if min(r["rmsd"] for r in rank(data[cid])[:5]) < 2)
        pb = sum(1 for cid in ids if rank(data[cid])[0].get("pb_valid") == "1")
        lines.append(f"| {label[0]} | {label[1]} | {t1}/{n} | {t5}/{n} | {pb}/{n} | {shift} | {cpu_s:.1f} |")

    shifts = [float(r["dit_refine_shift"]) for cid in ids for r in refined[cid] if "dit_refine_shift" in r]
    med = f"{statistics.median(shifts):.2f}" if shifts else "-"
    row(("search (unrefined)", "affinity"), lambda recs: ranked(recs, lambda r: float(r["dit_affinity"])),
        plain, "-", statistics.mean(cpu["none"]))
    for w in weights:
        row(("refined", f"affinity + {w:g} x (interaction + strain)"),
            lambda recs, w=w: ranked(recs, lambda r: float(r["dit_affinity"]) + w * (
                float(r["dit_mm_interaction"]) + float(r["dit_mm_strain"]))),
            refined, med, statistics.mean(cpu["openmm"]))
    row(("refined", "interaction + strain only"),
        lambda recs: ranked(recs, lambda r: float(r["dit_mm_interaction"]) + float(r["dit_mm_strain"])),
        refined, med, statistics.mean(cpu["openmm"]))
    production = lambda r: float(r["dit_affinity"]) + 0.02 * (float(r["dit_mm_interaction"]) + float(r["dit_mm_strain"]))
    import math
    for wp in [float(w) for w in a.population_weights.split(",") if w]:
        pop = lambda r: math.log(max(1, int(r.get("dit_population", "1"))))
        row(("search (unrefined)", f"affinity - {wp:g} x ln(population)"),
            lambda recs, wp=wp: ranked(recs, lambda r: float(r["dit_affinity"]) - wp * pop(r)),
            plain, "-", statistics.mean(cpu["none"]))
        row(("refined", f"affinity + 0.02 x (interaction + strain) - {wp:g} x ln(population)"),
            lambda recs, wp=wp: ranked(recs, lambda r: production(r) - wp * pop(r)),
            refined, med, statistics.mean(cpu["openmm"]))
    for wm in [float(w) for w in a.model_weights.split(",") if w]:
        row(("refined", f"affinity + 0.02 x (interaction + strain) + {wm:g} x model loss"),
            lambda recs, wm=wm: ranked(recs, lambda r: production(r) + wm * float(r["dit_model_loss"])),
            refined, med, statistics.mean(cpu["openmm"]))
    if a.model_weights:
        row(("refined", "model loss only"), lambda recs: ranked(recs, lambda r: float(r["dit_model_loss"])),
            refined, med, statistics.mean(cpu["openmm"]))
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(a.out, "ablation.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
