#!/usr/bin/python3
"""Checks a dit-engine output file against the H5MD 1.1 rules, reading it with h5py.

usage: check_h5md.py FILE [--samples N]   (exit 0: valid; 1: the first broken rule is printed)
--samples N also requires /samples/index to be exactly 0..N-1 in order (a merged or unsharded
file of an image job, whose frames are in index order).
"""
import sys

import h5py
import numpy as np


def fail(msg):
    print(f"check_h5md: {sys.argv[1]}: {msg}")
    sys.exit(1)


def check_element(path, g):
    """A time-dependent H5MD element: step, time and value with one frame axis."""
    for key in ("step", "time", "value"):
        if key not in g:
            fail(f"{path}: time-dependent element lacks '{key}'")
    n = g["value"].shape[0]
    if g["step"].shape != (n,) or g["time"].shape != (n,):
        fail(f"{path}: step {g['step'].shape} / time {g['time'].shape} do not match value {g['value'].shape}")
    if not np.issubdtype(g["step"].dtype, np.integer):
        fail(f"{path}/step: must be integer, is {g['step'].dtype}")
    return n


def walk_elements(path, g):
    """Every element below g: groups holding 'value' are elements, others are containers."""
    found = []
    for name, obj in g.items():
        p = f"{path}/{name}"
        if isinstance(obj, h5py.Group):
            if "value" in obj:
                found.append((p, obj, check_element(p, obj)))
            else:
                found.extend(walk_elements(p, obj))
    return found


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    want = int(sys.argv[sys.argv.index("--samples") + 1]) if "--samples" in sys.argv else None
    with h5py.File(sys.argv[1], "r") as f:
        if "h5md" not in f:
            fail("no /h5md group")
        h = f["h5md"]
        if list(h.attrs.get("version", [])) != [1, 1]:
            fail(f"/h5md version is {h.attrs.get('version')}, expected [1, 1]")
        for sub in ("author", "creator"):
            if sub not in h or "name" not in h[sub].attrs:
                fail(f"/h5md/{sub} lacks the 'name' attribute")
        if "version" not in h["creator"].attrs:
            fail("/h5md/creator lacks 'version'")
        for name, group in f.get("particles", {}).items():
            if "box" not in group:
                fail(f"/particles/{name} lacks 'box'")
            box = group["box"]
            dim = int(box.attrs.get("dimension", 0))
            boundary = [b.decode() if isinstance(b, bytes) else b for b in box.attrs.get("boundary", [])]
            if dim != 3 or len(boundary) != dim or any(b not in ("none", "periodic") for b in boundary):
                fail(f"/particles/{name}/box: dimension {dim}, boundary {boundary}")
            if "periodic" in boundary and "edges" not in box:
                fail(f"/particles/{name}/box: periodic boundary without edges")
            if "position" in group:
                n = check_element(f"/particles/{name}/position", group["position"])
                shape = group["position/value"].shape
                if len(shape) != 3 or shape[2] != dim:
                    fail(f"/particles/{name}/position/value has shape {shape}, expected [frame][atom][{dim}]")
                if "species" in group and group["species/value"].shape[:2] != shape[:2]:
                    fail(f"/particles/{name}/species does not match position")
                if "edges" in box:
                    if check_element(f"/particles/{name}/box/edges", box["edges"]) != n:
                        fail(f"/particles/{name}/box/edges has another frame count than position")
        for path, g, n in walk_elements("/observables", f.get("observables", {})):
            pass
        for path, g, n in walk_elements("/connectivity", f.get("connectivity", {})):
            if g["value"].shape[-1] != 2:
                fail(f"{path}/value: bonds must be pairs, shape {g['value'].shape}")
            if "particles_group" not in g.attrs:
                fail(f"{path}: lacks the particles_group attribute")
        if "samples" in f:
            s = f["samples"]
            idx = s["index"][()]
            if s["seed"].shape != idx.shape or s["valid"].shape != idx.shape:
                fail("/samples: index, seed and valid differ in length")
            if len(np.unique(idx)) != len(idx):
                fail("/samples/index holds a sample twice")
            if "images" in f and f["images/value"].shape[0] != len(idx):
                fail("/images/value and /samples/index differ in length")
            if want is not None and not np.array_equal(idx, np.arange(want)):
                fail(f"/samples/index is not 0..{want - 1} in order")
    print(f"check_h5md: {sys.argv[1]}: valid H5MD")


if __name__ == "__main__":
    main()
