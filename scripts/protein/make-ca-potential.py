#!/usr/bin/python3
"""Build the C-alpha trace potential (data/protein/ca-potential.txt) that guides backbone sampling.

Data preparation only; run with Debian's /usr/bin/python3 (python3-promod3, python3-numpy):

    /usr/bin/python3 scripts/protein/make-ca-potential.py \
        --heldout data/protein/heldout.txt -o data/protein/ca-potential.txt

A knowledge-based potential of the local C-alpha geometry (in the spirit of the statistical
potentials of Sippl 1990 and of CA-trace models such as Levitt 1976): energies in units of kT,
E = -ln p(features), from the training chains' histograms. Two tables (degrees):

    theta_tau(theta, tau): theta(i) = virtual angle CA(i-1)-CA(i)-CA(i+1),
                           tau(i)   = virtual dihedral CA(i-1)-CA(i)-CA(i+1)-CA(i+2)
    tau_tau(tau_prev, tau): tau(i-1) and tau(i), consecutive dihedrals (helix and strand runs)

and, for the restrained relaxation of rebuilt backbones (domains/protein/relax.h), a Ramachandran
map of the full backbone:

    rama(phi, psi):        phi(i) = C(i-1)-N(i)-CA(i)-C(i), psi(i) = N(i)-CA(i)-C(i)-N(i+1),
                           non-glycine residues only (generated chains are poly-alanine)

Bins of 5 degrees for the trace tables (theta covers 50..180, clamped; tau wraps) and of 10
degrees for rama, centred on 0, 10, ..., 350 (the grid of OpenMM's CMAPTorsionForce). Each histogram is smoothed with a
Gaussian of 5 degrees and mixed with a broad one (20 degrees, weight 2%) so that every region has
a gradient towards the populated basins; E = -ln(p / max p), capped at 12.
Sampling uses the tables with bilinear interpolation (domains/protein/guidance.cpp).

Chains: promod3-data's structure_db, those whose PDB id is not in the held-out list, in a fixed
random order (--seed), the first --chains of them; residues only where CA(i-2..i+2) have no
chain break (every CA-CA <= 4.2 A).
"""
import argparse
import importlib.util
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("rebuild_table", os.path.join(HERE, "make-rebuild-table.py"))
rt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rt)

WIDTH = 5.0
THETA_LO, THETA_HI = 50.0, 180.0
CAP = 12.0


def blur_axis(h, sigma_bins, axis, wrap):
    r = int(np.ceil(4 * sigma_bins))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma_bins) ** 2)
    k /= k.sum()
    h = np.moveaxis(h, axis, 0)
    n = h.shape[0]
    out = np.zeros_like(h)
    for o, w in zip(range(-r, r + 1), k):
        if wrap:
            out += w * np.roll(h, o, axis=0)
        else:
            idx = np.clip(np.arange(n) - o, 0, n - 1)
            out += w * h[idx]
    return np.moveaxis(out, 0, axis)


def energy(counts, wraps, width=WIDTH):
    p = counts / counts.sum()
    narrow, broad = p, p
    for ax, wrap in enumerate(wraps):
        narrow = blur_axis(narrow, 5.0 / width, ax, wrap)
        broad = blur_axis(broad, 20.0 / width, ax, wrap)
    mix = 0.98 * narrow + 0.02 * broad
    e = -np.log(mix / mix.max())
    return np.minimum(e, CAP)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(HERE))
    ap.add_argument("--heldout", default=os.path.join(root, "data/protein/heldout.txt"),
                    help="held-out PDB ids, one per line ('#' comments)")
    ap.add_argument("--chains", type=int, default=4000, help="training chains to use")
    ap.add_argument("--seed", type=int, default=17, help="chain order")
    ap.add_argument("-o", "--output", default=os.path.join(root, "data/protein/ca-potential.txt"))
    args = ap.parse_args()

    import promod3.loop as L
    db = L.LoadStructureDB()
    held = {l.split()[0].upper() for l in open(args.heldout) if l.strip() and not l.startswith("#")}
    order = np.random.RandomState(args.seed).permutation(db.GetNumCoords())
    theta, tau, tau_prev, phi, psi, used = [], [], [], [], [], 0
    for i in order:
        if used >= args.chains:
            break
        info = db.GetCoordInfo(int(i))
        if info.id.upper() in held:
            continue
        bb = db.GetBackboneList(int(i))
        ca = np.array([tuple(bb.GetCA(k)) for k in range(len(bb))], dtype=np.float64)
        used += 1
        m = len(ca)
        if m < 5:
            continue
        brk = np.linalg.norm(ca[1:] - ca[:-1], axis=1) > 4.2
        n_at = np.array([tuple(bb.GetN(k)) for k in range(m)], dtype=np.float64)
        c_at = np.array([tuple(bb.GetC(k)) for k in range(m)], dtype=np.float64)
        peptide = np.linalg.norm(n_at[1:] - c_at[:-1], axis=1) < 1.5  # C(k)-N(k+1) bonded
        seq = db.GetSequence(int(i))
        # Generated chains are poly-alanine: glycines (their own plot) are left out of rama.
        mid = np.array([k for k in range(1, m - 1) if peptide[k - 1] and peptide[k] and seq[k] != "G"],
                       dtype=np.int64)
        if len(mid):
            phi.append(rt.dihedral(c_at[mid - 1], n_at[mid], ca[mid], c_at[mid]))
            psi.append(rt.dihedral(n_at[mid], ca[mid], c_at[mid], n_at[mid + 1]))
        idx = np.array([i for i in range(2, m - 2) if not brk[i - 2:i + 2].any()], dtype=np.int64)
        if len(idx) == 0:
            continue
        a, b, c, d, e = ca[idx - 2], ca[idx - 1], ca[idx], ca[idx + 1], ca[idx + 2]
        theta.append(rt.angle(b, c, d))
        tau.append(rt.dihedral(b, c, d, e))
        tau_prev.append(rt.dihedral(a, b, c, d))
    theta, tau, tau_prev, phi, psi = (np.concatenate(v) for v in (theta, tau, tau_prev, phi, psi))
    print("%d chains, %d residues" % (used, len(theta)), file=sys.stderr)

    nth = int(round((THETA_HI - THETA_LO) / WIDTH))
    nta = int(round(360.0 / WIDTH))
    bth = np.clip(np.floor((theta - THETA_LO) / WIDTH).astype(np.int64), 0, nth - 1)
    bta = np.floor((tau + 180.0) / WIDTH).astype(np.int64) % nta
    btp = np.floor((tau_prev + 180.0) / WIDTH).astype(np.int64) % nta
    h1 = np.bincount(bth * nta + bta, minlength=nth * nta).reshape(nth, nta).astype(np.float64)
    h2 = np.bincount(btp * nta + bta, minlength=nta * nta).reshape(nta, nta).astype(np.float64)
    tables = [("theta_tau", ("theta", THETA_LO, nth, "clamp"), ("tau", -180.0, nta, "wrap"),
               energy(h1, [False, True])),
              ("tau_tau", ("tau_prev", -180.0, nta, "wrap"), ("tau", -180.0, nta, "wrap"),
               energy(h2, [True, True]))]
    nr = 36  # 10 deg, centres 0, 10, ..., 350
    bph = np.floor((phi + 5.0) / 10.0).astype(np.int64) % nr
    bps = np.floor((psi + 5.0) / 10.0).astype(np.int64) % nr
    h3 = np.bincount(bph * nr + bps, minlength=nr * nr).reshape(nr, nr).astype(np.float64)
    tables.append(("rama", ("phi", -5.0, nr, "wrap"), ("psi", -5.0, nr, "wrap"), energy(h3, [True, True], 10.0)))
    print("%d phi/psi pairs" % len(phi), file=sys.stderr)

    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "promod3-data"],
                             capture_output=True, text=True).stdout.strip() or "unknown"
    out = ["# dit-engine C-alpha trace potential (kT): E = -ln p, from training chains' histograms.",
           "# Source: promod3-data structure_db %s (python3-promod3), %d chains, %d residues;" % (version, used, len(theta)),
           "#   training chains only (held out: %s, %d ids)." % (os.path.basename(args.heldout), len(held)),
           "# Command: /usr/bin/python3 scripts/protein/make-ca-potential.py (--chains %d --seed %d)" % (args.chains, args.seed),
           "# Layout: 'table NAME AXIS0 LO0 N0 MODE0 AXIS1 LO1 N1 MODE1 WIDTH', then N0 rows of N1 energies;",
           "#   value [i][j] is the energy at the centre of bin (i, j): LO + (k + 0.5) WIDTH. MODE: clamp or wrap.",
           "dit-ca-potential 1"]
    for name, (a0, lo0, n0, m0), (a1, lo1, n1, m1), e in tables:
        width = 360.0 / n1 if m1 == "wrap" else WIDTH
        out.append("table %s %s %g %d %s %s %g %d %s %g" % (name, a0, lo0, n0, m0, a1, lo1, n1, m1, width))
        for row in e:
            out.append(" ".join("%.3f" % v for v in row))
    out.append("end")
    rt.write_lines(args.output, out)


if __name__ == "__main__":
    main()
