#!/usr/bin/python3
"""Checks dit batch outputs against an unsharded reference, with h5py.

  h5check.py same REF FILE N     FILE holds every sample 0..N-1 exactly once, in index order,
                                 and every dataset equals REF bit for bit
  h5check.py partial REF FILE    FILE (e.g. left by a killed job) opens, every per-sample
                                 dataset has the same number of rows, no index repeats, and each
                                 row equals REF's row of that sample bit for bit
  h5check.py count FILE          prints the number of samples in FILE (0 if it cannot be read)

A per-sample dataset is one whose first axis is the file's sample axis; the sample index is
read from the first of INDEX_NAMES found. Prints what it compared; exits 1 on a mismatch.
"""
import os
import sys

import numpy as np

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")  # `count` reads files still being written
import h5py  # noqa: E402

# Where the global sample index lives, in order of preference.
INDEX_NAMES = ["samples/index", "images/sample_index", "sample_index", "index"]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj

    f.visititems(visit)
    return out


def sample_index(f, path):
    for name in INDEX_NAMES:
        if name in f and isinstance(f[name], h5py.Dataset) and f[name].ndim == 1:
            idx = f[name][()]
            if idx.dtype.kind not in "iu":
                fail(f"{path}: {name} has dtype {idx.dtype}, expected integers")
            return name, idx.astype(np.int64)
    # H5MD: any time-dependent element's `step` holds the global sample index.
    for name, ds in sorted(datasets(f).items()):
        if name.endswith("/step") and ds.ndim == 1 and ds.dtype.kind in "iu":
            return name, ds[()].astype(np.int64)
    return None, None


def require_index(f, path):
    name, idx = sample_index(f, path)
    if name is None:
        fail(f"{path}: no sample index dataset (looked for {', '.join(INDEX_NAMES)}, */step)")
    return name, idx


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def describe_diff(a, b):
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if a.dtype.kind == "f":
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        return f"max |diff| {np.nanmax(d):.3g}, {int(np.count_nonzero(a != b))} elements differ"
    first = np.argwhere(a != b)[0]
    return (f"{int(np.count_nonzero(a != b))} elements differ; first at {tuple(first.tolist())}: "
            f"{a[tuple(first)]} vs {b[tuple(first)]}")


def compare(ref_path, path, expect_all):
    with h5py.File(ref_path, "r") as ref, h5py.File(path, "r") as f:
        ref_name, ref_idx = require_index(ref, ref_path)
        name, idx = require_index(f, path)
        n_ref = len(ref_idx)
        if sorted(ref_idx.tolist()) != list(range(n_ref)):
            fail(f"{ref_path}: reference {ref_name} is not a permutation of 0..{n_ref - 1}")
        uniq, counts = np.unique(idx, return_counts=True)
        dups = uniq[counts > 1]
        if len(dups):
            fail(f"{path}: samples present more than once: {dups[:20].tolist()}")
        out_of_range = idx[(idx < 0) | (idx >= n_ref)]
        if len(out_of_range):
            fail(f"{path}: sample indices outside 0..{n_ref - 1}: {out_of_range[:20].tolist()}")
        if expect_all is not None:
            missing = sorted(set(range(expect_all)) - set(idx.tolist()))
            if n_ref != expect_all:
                fail(f"{ref_path}: reference holds {n_ref} samples, expected {expect_all}")
            if missing:
                fail(f"{path}: samples missing: {missing[:20]} ({len(missing)} in all)")
            if not np.array_equal(idx, np.arange(expect_all)):
                fail(f"{path}: samples are not in index order (sample k must be frame k)")
        # ref_row[k] = row of sample k in REF; rows = REF rows in FILE's order
        ref_row = np.empty(n_ref, dtype=np.int64)
        ref_row[ref_idx] = np.arange(n_ref)
        rows = ref_row[idx]

        ref_sets, sets = datasets(ref), datasets(f)
        if expect_all is not None and sorted(ref_sets) != sorted(sets):
            fail(f"{path}: datasets differ from {ref_path}: only in reference "
                 f"{sorted(set(ref_sets) - set(sets))}, only here {sorted(set(sets) - set(ref_sets))}")
        per_sample, whole = [], []
        for dname, rds in sorted(ref_sets.items()):
            per = rds.ndim >= 1 and rds.shape[0] == n_ref and n_ref > 0
            if dname not in sets:
                if expect_all is None and per and len(idx) == 0:
                    continue  # an empty partial file may not have created it yet
                fail(f"{path}: dataset {dname} missing")
            ds = sets[dname]
            if per:
                if ds.shape[0] != len(idx):
                    fail(f"{path}: {dname} has {ds.shape[0]} rows but the file holds "
                         f"{len(idx)} samples ({name}): a partly written sample?")
                want = rds[()][rows] if len(rows) else rds[()][:0]
                got = ds[()]
                if not same_bits(want, got):
                    bad = [int(idx[i]) for i in range(len(idx)) if not same_bits(want[i], got[i])]
                    fail(f"{path}: {dname} differs from {ref_path} ({describe_diff(want, got)}); "
                         f"samples {bad[:10]}")
                per_sample.append(dname)
            else:
                if not same_bits(rds[()], ds[()]):
                    fail(f"{path}: {dname} differs from {ref_path} ({describe_diff(rds[()], ds[()])})")
                whole.append(dname)
        order = "in index order" if np.all(np.diff(idx) > 0) else "not in index order"
        print(f"OK {path}: {len(idx)} samples ({order}); bit-identical to {ref_path} in "
              f"{len(per_sample)} per-sample datasets ({', '.join(per_sample)}) and "
              f"{len(whole)} others")


def count(path):
    try:
        with h5py.File(path, "r") as f:
            _, idx = sample_index(f, path)
            return 0 if idx is None else len(idx)
    except Exception:  # noqa: BLE001 - a file being created may not be readable yet
        return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "same":
        compare(argv[2], argv[3], int(argv[4]))
    elif len(argv) == 4 and argv[1] == "partial":
        compare(argv[2], argv[3], None)
    elif len(argv) == 3 and argv[1] == "count":
        print(count(argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
