#!/usr/bin/python3
"""Build the CA-trace -> backbone rebuild table (data/protein/rebuild-table.txt), BBQ-like.

Data preparation only; run with Debian's /usr/bin/python3 (python3-promod3, python3-numpy):

    /usr/bin/python3 scripts/protein/make-rebuild-table.py \
        --heldout data/protein/heldout.txt -o data/protein/rebuild-table.txt

Method (after Gront, Kmiecik & Kolinski 2007, "Backbone building from quadrilaterals", J Comput
Chem 28:1593): the backbone atoms of residue i are placed in a local frame built from the C-alpha
trace alone, at the mean local position that real chains show for the same local CA geometry.

Local frame of residue i (origin CA(i)):
    u1 = unit(CA(i-1) - CA(i)),  u2 = unit(CA(i+1) - CA(i))
    x  = unit(u2 - u1)           (along the chain, from the previous towards the next neighbour)
    y  = unit(u1 + u2)           (bisector of the virtual bond angle, pointing into it)
    z  = x cross y
Features of residue i (degrees):
    theta(j) = virtual bond angle CA(j-1)-CA(j)-CA(j+1)
    tau(j)   = virtual dihedral CA(j-1)-CA(j)-CA(j+1)-CA(j+2) (IUPAC sign, in (-180, 180])
    theta_prev = theta(i-1), theta = theta(i), theta_next = theta(i+1),
    tau_prev = tau(i-1) (CA(i-2..i+1)), tau = tau(i) (CA(i-1..i+2)).
N(i) lies in the peptide plane (i-1, i), fixed by CA(i-2..i+1); C(i) and O(i) in the plane
(i, i+1), fixed by CA(i-1..i+2). So two groups of bins:
    group N  (x y z of N(i)):            theta_prev, theta, tau_prev (10 deg), tau (30 deg)
    group CO (x y z of C(i), of O(i)):   theta, theta_next, tau_prev (30 deg), tau (10 deg)
each with coarser fallback levels for bins with fewer than --min-count residues:
    level 1: the two thetas (10 deg) and the plane's own tau (30 deg); level 2: theta (10 deg);
    level 3: no features (the mean over all residues), so every lookup finds a value.
theta axes cover 80..150 deg in 10 deg bins and clamp outside; tau axes wrap.
Bin index: row-major over the level's axes (first axis slowest).

Residues are used only when CA(i-2..i+2) have no chain break (every CA-CA <= 4.2 A) and the
residue's N-CA, CA-C, C=O and C-N(i+1) bonds are within loose bounds (bad coordinates).
Chains: promod3-data's structure_db, chains whose PDB id is not in the held-out list, in a
fixed random order (--seed), the first --chains of them.

File format (text, '#' comments): see load_rebuild_table in domains/protein/rebuild.h.
"""
import argparse
import os
import subprocess
import sys
import zlib

import numpy as np

THETA_LO, THETA_W, THETA_N = 80.0, 10.0, 7
GROUPS = {
    # name: (atoms (index into [N, C, O]), levels: list of [(feature, width)])
    "N": ([0], [[("theta_prev", 10), ("theta", 10), ("tau_prev", 10), ("tau", 30)],
                [("theta_prev", 10), ("theta", 10), ("tau_prev", 30)],
                [("theta", 10)],
                []]),
    "CO": ([1, 2], [[("theta", 10), ("theta_next", 10), ("tau_prev", 30), ("tau", 10)],
                    [("theta", 10), ("theta_next", 10), ("tau", 30)],
                    [("theta", 10)],
                    []]),
}
FEATURES = ["theta_prev", "theta", "theta_next", "tau_prev", "tau"]


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def angle(p, q, r):
    c = (unit(p - q) * unit(r - q)).sum(-1)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def dihedral(p0, p1, p2, p3):
    b0 = p0 - p1
    b1 = unit(p2 - p1)
    b2 = p3 - p2
    v = b0 - (b0 * b1).sum(-1, keepdims=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdims=True) * b1
    x = (v * w).sum(-1)
    y = (np.cross(b1, v) * w).sum(-1)
    return np.degrees(np.arctan2(y, x))


def residue_samples(coords):
    """coords [L, 5, 3] (N, CA, C, O, CB) -> features [M, 5], local N/C/O [M, 3, 3]."""
    ca = coords[:, 1]
    m = len(ca)
    if m < 5:
        return None
    brk = np.linalg.norm(ca[1:] - ca[:-1], axis=1) > 4.2  # bond j -> j+1
    idx = [i for i in range(2, m - 2) if not brk[i - 2:i + 2].any()]
    if not idx:
        return None
    idx = np.array(idx)
    n, c, o = coords[idx, 0], coords[idx, 2], coords[idx, 3]
    n_next = coords[idx + 1, 0]
    d = lambda a, b: np.linalg.norm(a - b, axis=1)
    ok = ((d(n, ca[idx]) > 1.3) & (d(n, ca[idx]) < 1.6) & (d(c, ca[idx]) > 1.4) & (d(c, ca[idx]) < 1.65)
          & (d(c, o) > 1.1) & (d(c, o) < 1.35) & (d(c, n_next) > 1.2) & (d(c, n_next) < 1.45))
    idx = idx[ok]
    if len(idx) == 0:
        return None
    a, b, cc, dd, e = ca[idx - 2], ca[idx - 1], ca[idx], ca[idx + 1], ca[idx + 2]
    feats = np.stack([angle(a, b, cc), angle(b, cc, dd), angle(cc, dd, e),
                      dihedral(a, b, cc, dd), dihedral(b, cc, dd, e)], axis=1)
    u1, u2 = unit(b - cc), unit(dd - cc)
    x = unit(u2 - u1)
    y = unit(u1 + u2)
    z = np.cross(x, y)
    rot = np.stack([x, y, z], axis=1)  # rows are the axes: local = rot @ (p - CA)
    local = np.einsum("nij,naj->nai", rot, coords[idx][:, [0, 2, 3]] - cc[:, None])
    return feats, local


def write_lines(path, lines):
    """Writes the lines under a temporary name and renames it (nothing half-written)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)), file=sys.stderr)


def axis_bins(feats, name, width):
    f = feats[:, FEATURES.index(name)]
    if name.startswith("theta"):
        nb = int(round((150.0 - THETA_LO) / width))
        return np.clip(np.floor((f - THETA_LO) / width).astype(np.int64), 0, nb - 1), nb, THETA_LO
    nb = int(round(360.0 / width))
    return np.floor((f + 180.0) / width).astype(np.int64) % nb, nb, -180.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--heldout", default=os.path.join(root, "data/protein/heldout.txt"),
                    help="held-out PDB ids, one per line ('#' comments); if the file is missing, "
                         "every id with crc32(id) %% 20 == 0 is held out")
    ap.add_argument("--chains", type=int, default=4000, help="training chains to use")
    ap.add_argument("--seed", type=int, default=17, help="chain order")
    ap.add_argument("--min-count", type=int, default=8, help="residues a bin needs to be written")
    ap.add_argument("-o", "--output", default=os.path.join(root, "data/protein/rebuild-table.txt"))
    args = ap.parse_args()

    import promod3.loop as L
    db = L.LoadStructureDB()
    if os.path.exists(args.heldout):
        held = {l.split()[0].upper() for l in open(args.heldout) if l.strip() and not l.startswith("#")}
        held_rule = "PDB ids listed in %s (%d ids)" % (args.heldout, len(held))
        is_held = lambda pdb: pdb.upper() in held
    else:
        held_rule = "crc32(upper(pdb id)) % 20 == 0 (no held-out list found)"
        is_held = lambda pdb: zlib.crc32(pdb.upper().encode()) % 20 == 0
    order = np.random.RandomState(args.seed).permutation(db.GetNumCoords())
    feats, local, used = [], [], 0
    for i in order:
        if used >= args.chains:
            break
        info = db.GetCoordInfo(int(i))
        if is_held(info.id):
            continue
        bb = db.GetBackboneList(int(i))
        coords = np.array([[tuple(f(k)) for f in (bb.GetN, bb.GetCA, bb.GetC, bb.GetO, bb.GetCB)]
                           for k in range(len(bb))], dtype=np.float64)
        used += 1
        s = residue_samples(coords)
        if s is not None:
            feats.append(s[0])
            local.append(s[1])
    feats = np.concatenate(feats)
    local = np.concatenate(local)
    print("%d chains, %d residues" % (used, len(feats)), file=sys.stderr)

    try:
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "promod3-data"],
                                 capture_output=True, text=True).stdout.strip() or "unknown"
    except OSError:
        version = "unknown"
    out = []
    out.append("# dit-engine CA-trace -> backbone rebuild table (BBQ-like; Gront, Kmiecik & Kolinski 2007).")
    out.append("# Source: promod3-data structure_db %s (python3-promod3), %d chains, %d residues;" % (version, used, len(feats)))
    out.append("#   training chains only: held out = %s." % held_rule)
    out.append("# Command: /usr/bin/python3 scripts/protein/make-rebuild-table.py %s" % " ".join(sys.argv[1:]))
    out.append("#   (effective: --chains %d --seed %d --min-count %d)" % (args.chains, args.seed, args.min_count))
    out.append("# Frame of residue i: origin CA(i), u1 = unit(CA(i-1)-CA(i)), u2 = unit(CA(i+1)-CA(i)),")
    out.append("#   x = unit(u2-u1), y = unit(u1+u2), z = x cross y. Values: mean local coordinates (Angstrom).")
    out.append("# Features (deg): theta_prev/theta/theta_next = CA virtual angle at i-1/i/i+1;")
    out.append("#   tau_prev = dihedral CA(i-2..i+1), tau = dihedral CA(i-1..i+2). theta axes clamp, tau axes wrap.")
    out.append("# Layout: 'group NAME NVALUES LEVELS', then per level 'level NAXES (FEATURE LO WIDTH NBINS)... bins NROWS',")
    out.append("#   then NROWS rows 'INDEX COUNT VALUES...' (row-major index over the axes, first axis slowest).")
    out.append("#   Lookup: the first level whose bin is present; the last level has no axes (global mean).")
    out.append("dit-rebuild-table 1")
    for gname, (atoms, levels) in GROUPS.items():
        values = local[:, atoms, :].reshape(len(local), -1)
        out.append("group %s %d %d" % (gname, values.shape[1], len(levels)))
        for axes in levels:
            key = np.zeros(len(feats), dtype=np.int64)
            total = 1
            spec = []
            for name, width in axes:
                b, nb, lo = axis_bins(feats, name, width)
                key = key * nb + b
                total *= nb
                spec.append("%s %g %g %d" % (name, lo, width, nb))
            count = np.bincount(key, minlength=total)
            sums = np.zeros((total, values.shape[1]))
            np.add.at(sums, key, values)
            keep = np.nonzero(count >= (args.min_count if axes else 1))[0]
            out.append("level %d %s bins %d" % (len(axes), " ".join(spec), len(keep)) if axes
                       else "level 0 bins %d" % len(keep))
            for k in keep:
                mean = sums[k] / count[k]
                out.append("%d %d %s" % (k, count[k], " ".join("%.3f" % v for v in mean)))
    out.append("end")
    write_lines(args.output, out)


if __name__ == "__main__":
    main()
