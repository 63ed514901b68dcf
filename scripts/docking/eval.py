#!/usr/bin/python3
"""Docking evaluation on the RESERVED complexes: dit dock (with the model, and physics only with
random starting poses) against AutoDock Vina's results from run-vina.sh, same boxes, same
ETKDG start conformers, same machine.

  /usr/bin/python3 scripts/docking/eval.py --data DATA_DIR --vina VINA_OUT --out OUT_DIR \
      [--dit build/dit] [--rows model,physics] [--model data/models/dock-dit.safetensors]

Writes OUT_DIR/<row>/<id>/{poses.sdf,check.json,time.txt,log.txt}, OUT_DIR/results.tsv (one line per
complex and method) and OUT_DIR/table.md (the summary table for docs/docking.md).
Success = symmetry-corrected heavy-atom RMSD < 2 A to the crystal pose without superposition
(scripts/docking/rmsd.py); PB-valid by `dit check` (PoseBusters dock config) on the same files
for every method.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

from splits import ids as split_ids

HERE = os.path.dirname(os.path.abspath(__file__))


def rmsds(crystal, poses):
    out = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "rmsd.py"), crystal, poses],
                         capture_output=True, text=True, check=True).stdout.split()
    return [float(x) for x in out]


def pb_valid(dit, poses, receptor, json_path):
    subprocess.run([dit, "check", poses, "--receptor", receptor, "--json", json_path],
                   capture_output=True, text=True)
    with open(json_path) as f:
        report = json.load(f)
    records = report["poses"] if isinstance(report, dict) and "poses" in report else report
    return [bool(r.get("pb_valid")) for r in records]


def cpu_time(path):
    user, system, wall = open(path).read().split()
    return float(user) + float(system), float(wall)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--vina", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dit", default="build/dit")
    ap.add_argument("--rows", default="model,physics")
    ap.add_argument("--model", default="default")
    ap.add_argument("--only", default="")
    ap.add_argument("--split", default="reserved", help="reserved (the evaluation), heldout (the development complexes the model never saw) "
                    "or dev (every development complex, the held-out ones included)")
    ap.add_argument("--extra", default="", help="extra dit dock flags")
    a = ap.parse_args()
    ids = split_ids(os.path.join(a.data, "index.tsv"), a.split)
    if a.only:
        ids = [i for i in ids if i in a.only.split(",")]
    vina = {r["id"]: r for r in csv.DictReader(open(os.path.join(a.vina, "vina_results.tsv")), delimiter="\t")}
    rows = []
    for method in a.rows.split(","):
        for cid in ids:
            src = os.path.join(a.data, cid)
            d = os.path.join(a.out, method, cid)
            os.makedirs(d, exist_ok=True)
            poses = os.path.join(d, "poses.sdf")
            box = open(os.path.join(src, "box.txt")).read().strip()
            model = "none" if method == "physics" else a.model
            cmd = ["/usr/bin/time", "-f", "%U %S %e", "-o", os.path.join(d, "time.txt"), a.dit, "dock",
                   "--receptor", os.path.join(src, "receptor.pdb"), "--ligand", os.path.join(src, "ligand_start.sdf"),
                   "--box", box, "--top", "5", "--model", model, "-o", poses] + a.extra.split()
            r = subprocess.run(cmd, capture_output=True, text=True)
            with open(os.path.join(d, "log.txt"), "w") as f:  # the per-stage times of the run
                f.write(r.stderr)
            if r.returncode != 0:
                print(f"{method} {cid}: dit dock failed: {r.stderr.strip()}", file=sys.stderr)
                continue
            cpu, wall = cpu_time(os.path.join(d, "time.txt"))
            rm = rmsds(os.path.join(src, "crystal.sdf"), poses)
            valid = pb_valid(a.dit, poses, os.path.join(src, "receptor.pdb"), os.path.join(d, "check.json"))
            rows.append(dict(method=method, id=cid, cpu_s=cpu, wall_s=wall, top1=rm[0], top5=min(rm[:5]),
                             pb1=valid[0], pb_all=sum(valid) / len(valid)))
            print(f"{method:8s} {cid:10s} top1 {rm[0]:.2f} top5 {min(rm[:5]):.2f} PB {valid[0]} cpu {cpu:.1f}s",
                  file=sys.stderr)
    for cid in ids:
        v = vina.get(cid)
        if not v:
            continue
        d = os.path.join(a.out, "vina", cid)
        os.makedirs(d, exist_ok=True)
        poses = os.path.join(a.vina, cid, "vina_poses.sdf")
        rm = [float(x) for x in v["rmsd_per_pose"].split(",")]
        valid = pb_valid(a.dit, poses, os.path.join(a.data, cid, "receptor.pdb"), os.path.join(d, "check.json"))
        rows.append(dict(method="vina", id=cid, cpu_s=float(v["cpu_s"]), wall_s=float(v["time_s"]), top1=rm[0],
                         top5=min(rm[:5]), pb1=valid[0], pb_all=sum(valid[:5]) / len(valid[:5])))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.tsv"), "w") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    lines = ["| method | complexes | top-1 success | top-5 success | top-1 PB-valid | top-1 success and PB-valid "
             "| PB-valid (all returned poses) | CPU s / complex (mean) | wall s / complex (mean) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in ["model", "physics", "vina"]:
        rs = [r for r in rows if r["method"] == method]
        if not rs:
            continue
        n = len(rs)
        s1 = sum(r["top1"] < 2 for r in rs)
        s5 = sum(r["top5"] < 2 for r in rs)
        pb = sum(r["pb1"] for r in rs)
        both = sum(r["top1"] < 2 and r["pb1"] for r in rs)
        pball = sum(r["pb_all"] for r in rs) / n
        name = {"model": "dit-engine (DiT starts + physics)", "physics": "dit-engine physics only (random starts)",
                "vina": "AutoDock Vina 1.2.3, exhaustiveness 8"}[method]
        lines.append(f"| {name} | {n} | {s1}/{n} ({100*s1/n:.0f}%) | {s5}/{n} ({100*s5/n:.0f}%) | {pb}/{n} | {both}/{n} "
                     f"| {100*pball:.0f}% | {sum(r['cpu_s'] for r in rs)/n:.1f} | {sum(r['wall_s'] for r in rs)/n:.1f} |")
    open(os.path.join(a.out, "table.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
