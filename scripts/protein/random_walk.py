#!/usr/bin/python3
"""Random-walk backbone baseline with ideal geometry (no learning), for scripts/protein/eval.py.

  /usr/bin/python3 scripts/protein/random_walk.py --lengths 50,100 -n 10 --seed 0 -o OUT_DIR

1. CA trace: a self-avoiding random walk with steps of d0 = 3.80 A (the CA-CA distance of an ideal
   trans peptide, computed from the geometry below). Each step is a uniformly random direction,
   accepted when CA(i) - CA(i-2) >= 5.5 A (virtual CA angle >= ~93 deg, the lower edge seen in
   real chains) and CA(i) - CA(j) >= 4.0 A for every j <= i-2 (no CA-CA clash); up to 200 tries
   per step, then the last 5 residues are discarded and regrown (restart after 50 backtracks).
2. Backbone: every peptide unit CA(i), C(i), O(i), N(i+1), CA(i+1) is the ideal planar trans
   unit (Engh & Huber 1991: N-CA 1.458, CA-C 1.525, C-N 1.329, C=O 1.231 A; CA-C-N 116.2,
   C-N-CA 121.7, CA-C-O 120.1 deg) laid on the CA(i)->CA(i+1) axis. Its rotation about that axis
   is one of 72 candidates (5 deg grid), chosen jointly for the whole chain by dynamic
   programming (Viterbi) to minimise the sum of squared deviations of N(i)-CA(i)-C(i) from the
   ideal 111.2 deg. The terminal N(0) and C(L-1), O(L-1) come from units to virtual CAs one
   random step past each end. CB from N, CA, C with tetrahedral geometry (CA-CB 1.53 A,
   L-chirality, on the N-CA-C bisector plane, 54.75 deg out of the N-CA-C plane).
   Bond lengths, peptide planarity (omega = 180) and CA-CA are ideal by construction; tau is as
   close to ideal as the trace allows (not exact: a nearly straight virtual angle forces it up); phi/psi are whatever the random trace implies (mostly not Ramachandran-
   allowed), and there are no H-bonded secondary structures beyond chance.
Files: OUT_DIR/len{L}_{i}.pdb (residues ALA, chain A), readable by mkdssp (HEADER line) and TMalign.
"""
import argparse
import os

import numpy as np

# Engh & Huber (1991) backbone geometry
B_NCA, B_CAC, B_CN, B_CO = 1.458, 1.525, 1.329, 1.231
A_CACN, A_CNCA, A_CACO, A_NCAC = 116.2, 121.7, 120.1, 111.2


def _peptide_unit():
    """Ideal trans peptide in 2D: CA(i) at origin, CA(i+1) on +x. Returns (C, O, N, CA1) and d0."""
    def turn(p_prev, p, length, angle_deg, sign):
        # next point from p, making bond angle `angle_deg` at p with p_prev, turning by `sign`
        u = (p_prev - p) / np.linalg.norm(p_prev - p)
        a = np.radians(angle_deg) * sign
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return p + length * (rot @ u)
    ca0 = np.array([0.0, 0.0])
    c = np.array([B_CAC, 0.0])
    n = turn(ca0, c, B_CN, A_CACN, +1)
    ca1 = turn(c, n, B_NCA, A_CNCA, -1)   # trans: CA(i) and CA(i+1) on opposite sides of C-N
    o = turn(ca0, c, B_CO, A_CACO, -1)    # O on the other side from N
    pts = np.stack([ca0, c, o, n, ca1])
    d0 = np.linalg.norm(ca1)
    ex = ca1 / d0
    ey = np.array([-ex[1], ex[0]])
    local = np.stack([pts @ ex, pts @ ey], axis=1)
    return local[1], local[2], local[3], d0


PEP_C, PEP_O, PEP_N, D0 = _peptide_unit()


def ca_walk(n, rng, min_i2=5.5, min_clash=4.0, tries=200):
    ca = np.zeros((n, 3))
    restarts = 0
    while True:
        i, backtracks = 1, 0
        ca[0] = 0.0
        while i < n:
            ok = False
            for _ in range(tries):
                v = rng.normal(size=3)
                p = ca[i - 1] + D0 * v / np.linalg.norm(v)
                if i >= 2 and np.linalg.norm(p - ca[i - 2]) < min_i2:
                    continue
                if i >= 3 and np.min(np.linalg.norm(ca[:i - 2] - p, axis=1)) < min_clash:
                    continue
                ok = True
                break
            if ok:
                ca[i] = p
                i += 1
            else:
                backtracks += 1
                i = max(1, i - 5)
                if backtracks > 50:
                    break
        if i == n:
            return ca
        restarts += 1


def _unit_frame(a, b, ref):
    """Orthonormal (ex along a->b, ey perpendicular, in the plane with ref)."""
    ex = (b - a) / np.linalg.norm(b - a)
    r = ref - np.dot(ref, ex) * ex
    if np.linalg.norm(r) < 1e-6:
        r = np.cross(ex, [1.0, 0.0, 0.0])
        if np.linalg.norm(r) < 1e-6:
            r = np.cross(ex, [0.0, 1.0, 0.0])
    ey = r / np.linalg.norm(r)
    ez = np.cross(ex, ey)
    return ex, ey, ez


def ideal_cb(n, ca, c, length=1.53):
    """Tetrahedral CB (L-amino acid): in the plane bisecting N-CA-C, 54.75 deg out of it."""
    u = (n - ca) / np.linalg.norm(n - ca)
    v = (c - ca) / np.linalg.norm(c - ca)
    bis = -(u + v) / np.linalg.norm(u + v)
    perp = np.cross(u, v) / np.linalg.norm(np.cross(u, v))
    a = np.radians(109.47 / 2)
    return ca + length * (np.cos(a) * bis + np.sin(a) * perp)


def backbone_from_ca(ca_ext):
    """ca_ext: [L+2, 3] trace with one virtual CA before and after. Returns [L, 5, 3] N, CA, C, O, CB.

    Peptide unit k spans ca_ext[k] -> ca_ext[k+1]; its rotation about that axis is one of 72 angles.
    The rotations are chosen jointly (Viterbi over the chain) to minimise sum over residues of
    (N-CA-C angle - 111.2 deg)^2, where residue i's N comes from unit i and its C from unit i+1."""
    m = len(ca_ext) - 1
    thetas = np.radians(np.arange(0, 360, 5))
    T = len(thetas)
    pos = np.zeros((m, T, 3, 3))               # unit, rotation, (C, O, N), xyz
    for k in range(m):
        a, b = ca_ext[k], ca_ext[k + 1]
        ref = ca_ext[k + 2] - b if k + 2 < len(ca_ext) else a - ca_ext[k - 1]
        ex, ey, ez = _unit_frame(a, b, ref)
        e1 = np.cos(thetas)[:, None] * ey + np.sin(thetas)[:, None] * ez      # [T, 3]
        for j, p2 in enumerate((PEP_C, PEP_O, PEP_N)):
            pos[k, :, j] = a + p2[0] * ex + p2[1] * e1
    # Viterbi: state of unit k = its rotation; cost between unit k and k+1 = tau error at CA ca_ext[k+1]
    cost = np.zeros(T)
    back = np.zeros((m, T), dtype=np.int64)
    for k in range(m - 1):
        ca = ca_ext[k + 1]
        u = pos[k, :, 2] - ca                   # N of residue from unit k      [T, 3]
        v = pos[k + 1, :, 0] - ca               # C of residue from unit k+1    [T, 3]
        cosang = (u @ v.T) / (np.linalg.norm(u, axis=1)[:, None] * np.linalg.norm(v, axis=1)[None, :])
        err = (np.degrees(np.arccos(np.clip(cosang, -1, 1))) - A_NCAC) ** 2   # [T_k, T_k+1]
        tot = cost[:, None] + err
        back[k + 1] = np.argmin(tot, axis=0)
        cost = tot[back[k + 1], np.arange(T)]
    choice = np.zeros(m, dtype=np.int64)
    choice[-1] = int(np.argmin(cost))
    for k in range(m - 1, 0, -1):
        choice[k - 1] = back[k, choice[k]]
    units = [pos[k, choice[k]] for k in range(m)]
    L = len(ca_ext) - 2
    out = np.zeros((L, 5, 3))
    for i in range(L):
        n = units[i][2]
        c, o = units[i + 1][0], units[i + 1][1]
        ca = ca_ext[i + 1]
        out[i] = [n, ca, c, o, ideal_cb(n, ca, c)]
    return out


def random_backbone(length, rng):
    ca = ca_walk(length + 2, rng)
    return backbone_from_ca(ca)


THREE = dict(A="ALA", R="ARG", N="ASN", D="ASP", C="CYS", Q="GLN", E="GLU", G="GLY", H="HIS", I="ILE",
             L="LEU", K="LYS", M="MET", F="PHE", P="PRO", S="SER", T="THR", W="TRP", Y="TYR", V="VAL")


def write_pdb(path, xyz, seq=None, title="DIT PROTEIN"):
    """N, CA, C, O, CB per residue; a HEADER line because mkdssp 4.x needs one to read PDB."""
    lines = ["HEADER    %-40s01-JAN-00   XXXX              " % title[:40]]
    k = 1
    for i in range(len(xyz)):
        res = THREE.get(seq[i], "ALA") if seq else "ALA"
        for a, (name, el) in enumerate(zip(("N", "CA", "C", "O", "CB"), "NCCOC")):
            if res == "GLY" and name == "CB":
                continue
            x, y, z = xyz[i, a]
            lines.append("ATOM  %5d  %-3s %3s A%4d    %8.3f%8.3f%8.3f  1.00  0.00          %2s"
                         % (k, name, res, i + 1, x, y, z, el))
            k += 1
    lines += ["END", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="50,75,100,125,150")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for L in [int(x) for x in args.lengths.split(",")]:
        for i in range(args.n):
            rng = np.random.default_rng([args.seed, L, i])
            write_pdb(os.path.join(args.out, "len%d_%d.pdb" % (L, i)), random_backbone(L, rng))


if __name__ == "__main__":
    main()
