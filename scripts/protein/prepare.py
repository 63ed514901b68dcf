#!/usr/bin/python3
"""Convert promod3-data's structure_db (21,119 PDB chains, backbone N, CA, C, O, CB) once into one
HDF5 file that the C++ trainer streams.

  /usr/bin/python3 scripts/protein/prepare.py --out DIR [--min-length 40] [--max-length 256]
      [--heldout data/protein/heldout.txt] [--make-heldout] [--limit N] [--workers 2]
      [--id-threshold 0.40] [--id-candidates 100] [--id-validate 0]

What it does
  1. Every structure_db chain is cut at chain breaks (consecutive CA-CA > 4.2 A) into contiguous
     segments. Segments with min_length <= length <= max_length (defaults 40 and 256; the model
     targets 50-150) and finite coordinates are kept; the rest are counted and dropped.
  2. Split by whole PDB entry: the PDB ids listed in data/protein/heldout.txt are held out
     (split 1); --make-heldout (re)writes that list from the rule "sha1(upper(pdb_id)) mod 10000 < 500"
     (about 5% of entries, deterministic, independent of this machine and of --limit).
  3. Identity filter: a TRAINING chain whose full sequence is > 40% identical to the full sequence
     of any held-out chain is removed from the file (listed in `excluded_*`). Identity = identical
     aligned pairs of an ost Smith-Waterman local alignment (BLOSUM62, gap open -11, extend -1)
     divided by the length of the SHORTER of the two chains (CD-HIT-style). Alignments are run only
     on candidate pairs from a 3-mer prefilter: for each held-out chain, the --id-candidates
     training chains with the highest excess of shared distinct 3-mers over chance,
     (S - E) / sqrt(E + 1) with E = n_a * n_b / 20^3, plus every pair sharing >= 10% of the
     shorter chain's 3-mers. Exact duplicates always pass the prefilter; a pair above 40% identity
     that shares few 3-mers and ranks below the cutoff is missed (see --id-validate, which aligns
     N random held-out chains against ALL training chains and reports what the prefilter missed).

HDF5 layout of DIR/chains.h5 (all datasets contiguous, uncompressed, little-endian)
  coords     float32 [R, 5, 3]   atoms N, CA, C, O, CB in Angstrom, PDB frame (not centred).
                                 CB is the structure_db's CB, which promod3 builds from N, CA, C with
                                 ideal geometry for EVERY residue, glycine included (CA-CB 1.50 A);
                                 glycine CB is therefore an ideal virtual position, never NaN.
  sequence   uint8   [R]         one-letter amino-acid code as ASCII per residue ('A'..'Y', 'X')
  dssp       uint8   [R]         structure_db's stored DSSP state per residue as ASCII
                                 (H G I E B T S C; computed by promod3 on the full deposited chain)
  offsets    int64   [S+1]       segment s has residues offsets[s] .. offsets[s+1]-1
  lengths    int32   [S]         offsets[s+1] - offsets[s]
  names      |S24    [S]         fixed-length ASCII "PDBID_CHAIN_SEG", e.g. "12AS_A_0"
                                 (SEG = index of the segment within its chain, counting all
                                 segments before the length filter)
  split      uint8   [S]         0 = train, 1 = held-out
  excluded_names     |S24 [X]    training chains removed by the identity filter ("PDBID_CHAIN")
  excluded_match     |S24 [X]    the held-out chain each one matched
  excluded_identity  float32 [X] that identity
  attributes: format ("dit-protein-chains v1"), source ("promod3-data structure_db, <dpkg version>"),
    command, atoms ("N,CA,C,O,CB"), units ("angstrom"), min_length, max_length, break_ca_ca,
    identity filter parameters, heldout_file_sha256, and counts n_segments, n_residues,
    n_train_segments, n_heldout_segments, n_train_residues, n_heldout_residues, n_chains_*.
"""
import argparse
import hashlib
import multiprocessing as mp
import os
import shlex
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_HELDOUT = os.path.join(REPO, "data", "protein", "heldout.txt")
AA20 = "ACDEFGHIKLMNPQRSTVWY"
NAME_DTYPE = "S24"


def log(*a):
    print(*a, flush=True)


def heldout_rule(pdb_id):
    """Deterministic ~5% rule on the PDB id (whole entries held out together)."""
    h = int(hashlib.sha1(pdb_id.upper().encode()).hexdigest()[:8], 16)
    return h % 10000 < 500


def promod3_version():
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", "promod3-data"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"


def read_heldout(path):
    ids = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                ids.add(line.upper())
    return ids


def write_heldout(path, all_ids):
    ids = sorted(i for i in set(all_ids) if heldout_rule(i))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# Held-out PDB entries for the protein backbone domain (all chains of an entry).\n")
        f.write("# Rule: int(sha1(upper(pdb_id)).hexdigest()[:8], 16) % 10000 < 500 over the ids of\n")
        f.write("# promod3-data's structure_db (%s); written by scripts/protein/prepare.py --make-heldout.\n"
                % promod3_version())
        f.write("# %d of %d entries.\n" % (len(ids), len(set(all_ids))))
        for i in ids:
            f.write(i + "\n")
    return set(ids)


def read_db(limit):
    """Yield (pdb_id, chain, coords [L,5,3] float64, sequence str, dssp str) per structure_db chain."""
    import promod3.loop as L
    db = L.LoadStructureDB()
    n = db.GetNumCoords() if limit is None else min(limit, db.GetNumCoords())
    for i in range(n):
        ci = db.GetCoordInfo(i)
        bb = db.GetBackboneList(i)
        m = len(bb)
        xyz = np.array([(bb.GetN(j).data, bb.GetCA(j).data, bb.GetC(j).data, bb.GetO(j).data,
                         bb.GetCB(j).data) for j in range(m)], dtype=np.float32).reshape(m, 5, 3)
        seq = bb.GetSequence()
        dssp = db.GetDSSPStates(L.FragmentInfo(i, 0, m))
        yield ci.id.upper(), ci.chain_name, xyz, seq, dssp


def segments(xyz, break_dist):
    """Split at consecutive CA-CA > break_dist: list of (start, end) half-open."""
    ca = xyz[:, 1]
    d = np.linalg.norm(ca[1:] - ca[:-1], axis=1)
    # NaN distances count as breaks too (non-finite segments are dropped later anyway)
    cuts = np.nonzero(~(d <= break_dist))[0] + 1
    bounds = [0] + cuts.tolist() + [len(xyz)]
    return list(zip(bounds[:-1], bounds[1:]))


# ---------------------------------------------------------------- identity filter

def kmer_matrix(seqs, k=3):
    from scipy import sparse
    idx = {a: i for i, a in enumerate(AA20)}
    rows, cols, nk = [], [], []
    for r, s in enumerate(seqs):
        codes = [idx.get(c, -1) for c in s]
        ks = set()
        for j in range(len(codes) - k + 1):
            w = codes[j:j + k]
            if min(w) < 0:
                continue
            ks.add((w[0] * 20 + w[1]) * 20 + w[2])
        rows.extend([r] * len(ks))
        cols.extend(ks)
        nk.append(len(ks))
    m = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(seqs), 20 ** k))
    return m, np.array(nk, dtype=np.float64)


def prefilter(held_seqs, train_seqs, n_cand):
    """Candidate (held index, train index) pairs from shared distinct 3-mers."""
    H, nh = kmer_matrix(held_seqs)
    T, nt = kmer_matrix(train_seqs)
    TT = T.T.tocsc()
    pairs = set()
    block = 64
    for b0 in range(0, H.shape[0], block):
        S = (H[b0:b0 + block] @ TT).toarray()  # [b, n_train] shared distinct 3-mers
        E = np.outer(nh[b0:b0 + block], nt) / 8000.0
        z = (S - E) / np.sqrt(E + 1.0)
        frac = S / np.maximum(np.minimum.outer(nh[b0:b0 + block], nt), 1.0)
        kk = min(n_cand, S.shape[1])
        top = np.argpartition(-z, kk - 1, axis=1)[:, :kk] if kk > 0 else np.zeros((S.shape[0], 0), int)
        for r in range(S.shape[0]):
            for c in top[r]:
                pairs.add((b0 + r, int(c)))
            for c in np.nonzero(frac[r] >= 0.10)[0]:
                pairs.add((b0 + r, int(c)))
    return sorted(pairs)


def identity(a, b):
    """Identical pairs of a local alignment (BLOSUM62, -11/-1) / length of the shorter sequence."""
    from ost import seq
    s1 = seq.CreateSequence("a", a)
    s2 = seq.CreateSequence("b", b)
    al = seq.alg.LocalAlign(s1, s2, seq.alg.BLOSUM62, -11, -1)
    if not al:
        return 0.0
    x = np.frombuffer(al[0].GetSequence(0).GetString().encode(), np.uint8)
    y = np.frombuffer(al[0].GetSequence(1).GetString().encode(), np.uint8)
    same = np.count_nonzero((x == y) & (x != ord("-")))
    return same / max(1, min(len(a), len(b)))


def _align_chunk(args):
    pairs, held, train = args
    return [(i, j, identity(held[i], train[j])) for i, j in pairs]


def align_pairs(pairs, held_seqs, train_seqs, workers):
    if not pairs:
        return []
    chunk = 500
    jobs = [pairs[i:i + chunk] for i in range(0, len(pairs), chunk)]
    out = []
    if workers <= 1:
        for j in jobs:
            out.extend(_align_chunk((j, held_seqs, train_seqs)))
        return out
    # fork: the workers inherit the sequences; send only the pair lists
    global _HELD, _TRAIN
    _HELD, _TRAIN = held_seqs, train_seqs
    with mp.get_context("fork").Pool(workers) as pool:
        for res in pool.imap_unordered(_align_chunk_global, jobs):
            out.extend(res)
    return out


_HELD = _TRAIN = None


def _align_chunk_global(pairs):
    return [(i, j, identity(_HELD[i], _TRAIN[j])) for i, j in pairs]


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (DIR/chains.h5)")
    ap.add_argument("--min-length", type=int, default=40)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--break-dist", type=float, default=4.2, help="CA-CA distance that counts as a chain break")
    ap.add_argument("--heldout", default=DEFAULT_HELDOUT, help="held-out PDB id list")
    ap.add_argument("--make-heldout", action="store_true", help="(re)write --heldout from the hash rule over all ids")
    ap.add_argument("--limit", type=int, default=None, help="only the first N structure_db chains (quick test)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--id-threshold", type=float, default=0.40)
    ap.add_argument("--id-candidates", type=int, default=100, help="training candidates aligned per held-out chain")
    ap.add_argument("--id-validate", type=int, default=0,
                    help="align N random held-out chains against ALL training chains to measure prefilter misses")
    ap.add_argument("--no-id-filter", action="store_true")
    args = ap.parse_args()
    t0 = time.time()

    import h5py

    # 1. read and segment
    chains = []  # (pdb, chain, xyz, seq, dssp, [(s, e, seg_index)])
    stats = dict(chains_read=0, residues_read=0, seg_total=0, seg_short=0, seg_long=0, seg_nonfinite=0)
    all_ids = []
    for pdb, ch, xyz, seq, dssp in read_db(args.limit):
        stats["chains_read"] += 1
        stats["residues_read"] += len(xyz)
        all_ids.append(pdb)
        keep = []
        for k, (s, e) in enumerate(segments(xyz, args.break_dist)):
            stats["seg_total"] += 1
            n = e - s
            if n < args.min_length:
                stats["seg_short"] += 1
            elif n > args.max_length:
                stats["seg_long"] += 1
            elif not np.isfinite(xyz[s:e]).all():
                stats["seg_nonfinite"] += 1
            else:
                keep.append((s, e, k))
        chains.append((pdb, ch, xyz, seq, dssp, keep))
        if stats["chains_read"] % 5000 == 0:
            log("  read %d chains (%.0f s)" % (stats["chains_read"], time.time() - t0))
    log("read %d chains, %d residues, %d segments (%d < min, %d > max, %d non-finite) in %.1f s"
        % (stats["chains_read"], stats["residues_read"], stats["seg_total"], stats["seg_short"],
           stats["seg_long"], stats["seg_nonfinite"], time.time() - t0))

    # 2. split
    if args.make_heldout:
        import promod3.loop as L
        db = L.LoadStructureDB()
        every_id = [db.GetCoordInfo(i).id.upper() for i in range(db.GetNumCoords())]
        held_ids = write_heldout(args.heldout, every_id)
        log("wrote %s (%d entries)" % (args.heldout, len(held_ids)))
    held_ids = read_heldout(args.heldout)
    heldout_sha = hashlib.sha256(open(args.heldout, "rb").read()).hexdigest()
    is_held = [c[0] in held_ids for c in chains]

    # 3. identity filter (only chains that contribute segments matter)
    held_idx = [i for i, c in enumerate(chains) if is_held[i] and c[5]]
    train_idx = [i for i, c in enumerate(chains) if not is_held[i] and c[5]]
    excluded = {}  # train chain index -> (held chain index, identity)
    id_stats = {}
    if not args.no_id_filter and held_idx and train_idx:
        t1 = time.time()
        hs = [chains[i][3] for i in held_idx]
        ts = [chains[i][3] for i in train_idx]
        pairs = prefilter(hs, ts, args.id_candidates)
        t2 = time.time()
        log("identity prefilter: %d held-out x %d training chains -> %d candidate pairs (%.1f s)"
            % (len(hs), len(ts), len(pairs), t2 - t1))
        res = align_pairs(pairs, hs, ts, args.workers)
        for i, j, ident in res:
            if ident > args.id_threshold:
                ti = train_idx[j]
                if ti not in excluded or excluded[ti][1] < ident:
                    excluded[ti] = (held_idx[i], ident)
        t3 = time.time()
        log("identity alignments: %d pairs in %.1f s; %d training chains > %.0f%% identical to a held-out chain"
            % (len(res), t3 - t2, len(excluded), 100 * args.id_threshold))
        id_stats = dict(id_candidate_pairs=len(pairs), id_aligned_seconds=round(t3 - t2, 1))
        if args.id_validate > 0:
            rng = np.random.default_rng(0)
            pick = rng.choice(len(hs), size=min(args.id_validate, len(hs)), replace=False)
            cand = set(pairs)
            full = [(int(i), j) for i in pick for j in range(len(ts))]
            resv = align_pairs(full, hs, ts, args.workers)
            hits = [(i, j, x) for i, j, x in resv if x > args.id_threshold]
            missed = [(i, j, x) for i, j, x in hits if (i, j) not in cand]
            log("identity validation: %d held-out chains x all %d training chains (%d alignments, %.1f s): "
                "%d pairs > threshold, %d of them missed by the prefilter %s"
                % (len(pick), len(ts), len(full), time.time() - t3, len(hits), len(missed),
                   ["%s_%s~%s_%s %.2f" % (chains[held_idx[i]][0], chains[held_idx[i]][1],
                                          chains[train_idx[j]][0], chains[train_idx[j]][1], x)
                    for i, j, x in missed[:10]]))
            id_stats.update(id_validate_chains=len(pick), id_validate_hits=len(hits),
                            id_validate_missed=len(missed))

    # 4. write
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "chains.h5")
    tmp = path + ".tmp"
    seg_rows = []  # (chain index, s, e, k, split)
    for ci, c in enumerate(chains):
        if ci in excluded:
            continue
        for s, e, k in c[5]:
            seg_rows.append((ci, s, e, k, 1 if is_held[ci] else 0))
    lengths = np.array([e - s for _, s, e, _, _ in seg_rows], dtype=np.int32)
    offsets = np.zeros(len(seg_rows) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(lengths)
    R = int(offsets[-1])
    split = np.array([r[4] for r in seg_rows], dtype=np.uint8)
    with h5py.File(tmp, "w") as f:
        dc = f.create_dataset("coords", (R, 5, 3), dtype="<f4")
        sq = np.empty(R, np.uint8)
        ds = np.empty(R, np.uint8)
        buf, start = [], 0
        for (ci, s, e, k, _), o in zip(seg_rows, offsets[:-1]):
            c = chains[ci]
            buf.append(c[2][s:e].astype(np.float32))
            sq[o:o + e - s] = np.frombuffer(c[3][s:e].encode(), np.uint8)
            ds[o:o + e - s] = np.frombuffer(c[4][s:e].encode(), np.uint8)
            if sum(len(b) for b in buf) > 200000:
                blk = np.concatenate(buf)
                dc[start:start + len(blk)] = blk
                start += len(blk)
                buf = []
        if buf:
            blk = np.concatenate(buf)
            dc[start:start + len(blk)] = blk
            start += len(blk)
        assert start == R
        f.create_dataset("sequence", data=sq)
        f.create_dataset("dssp", data=ds)
        f.create_dataset("offsets", data=offsets)
        f.create_dataset("lengths", data=lengths)
        f.create_dataset("names", data=np.array(["%s_%s_%d" % (chains[ci][0], chains[ci][1], k)
                                                 for ci, _, _, k, _ in seg_rows], dtype=NAME_DTYPE))
        f.create_dataset("split", data=split)
        ex = sorted(excluded.items())
        f.create_dataset("excluded_names", data=np.array(["%s_%s" % chains[t][:2] for t, _ in ex], dtype=NAME_DTYPE))
        f.create_dataset("excluded_match", data=np.array(["%s_%s" % chains[h][:2] for _, (h, _) in ex], dtype=NAME_DTYPE))
        f.create_dataset("excluded_identity", data=np.array([x for _, (_, x) in ex], dtype=np.float32))
        seg_chain = np.array([r[0] for r in seg_rows], dtype=np.int64)
        counts = dict(
            n_segments=len(seg_rows), n_residues=R,
            n_train_segments=int((split == 0).sum()), n_heldout_segments=int((split == 1).sum()),
            n_train_residues=int(lengths[split == 0].sum()), n_heldout_residues=int(lengths[split == 1].sum()),
            n_train_chains=int(len(np.unique(seg_chain[split == 0]))),
            n_heldout_chains=int(len(np.unique(seg_chain[split == 1]))),
            n_chains_read=stats["chains_read"], n_residues_read=stats["residues_read"],
            n_segments_before_filter=stats["seg_total"], n_segments_too_short=stats["seg_short"],
            n_segments_too_long=stats["seg_long"], n_segments_nonfinite=stats["seg_nonfinite"],
            n_chains_excluded_identity=len(excluded),
            n_heldout_entries_listed=len(held_ids))
        attrs = dict(
            format="dit-protein-chains v1",
            source="promod3-data structure_db, %s" % promod3_version(),
            command="/usr/bin/python3 " + " ".join(shlex.quote(a) for a in sys.argv),
            atoms="N,CA,C,O,CB", units="angstrom",
            cb="structure_db CB: ideal-geometry position built by promod3 for every residue, glycine included",
            min_length=args.min_length, max_length=args.max_length, break_ca_ca=args.break_dist,
            split_rule="PDB ids listed in heldout file are split 1 (held-out); others 0",
            heldout_file=os.path.relpath(args.heldout, REPO), heldout_file_sha256=heldout_sha,
            identity_filter=("none" if args.no_id_filter else
                             "training chains with > %.2f identity (identical pairs of SW local alignment, "
                             "BLOSUM62 -11/-1, / shorter chain length) to any held-out chain removed; "
                             "candidates from a 3-mer prefilter (top %d per held-out chain by excess shared "
                             "3-mers, plus pairs sharing >= 10%% of 3-mers)" % (args.id_threshold, args.id_candidates)),
            limit=-1 if args.limit is None else args.limit)
        attrs.update(counts)
        attrs.update(id_stats)
        for k, v in attrs.items():
            f.attrs[k] = v
    os.replace(tmp, path)
    dt = time.time() - t0
    log("wrote %s (%.1f MB) in %.1f s" % (path, os.path.getsize(path) / 1e6, dt))
    log("%-9s %8s %9s %10s" % ("split", "chains", "segments", "residues"))
    log("%-9s %8d %9d %10d" % ("train", counts["n_train_chains"], counts["n_train_segments"], counts["n_train_residues"]))
    log("%-9s %8d %9d %10d" % ("held-out", counts["n_heldout_chains"], counts["n_heldout_segments"], counts["n_heldout_residues"]))
    log("removed from training by the identity filter: %d chains" % len(excluded))


if __name__ == "__main__":
    main()
