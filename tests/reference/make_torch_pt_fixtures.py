#!/usr/bin/python3
"""torch.save fixtures for the .pt reader (tests/io/torch_pt_test.cpp, src/io/torch_pt.cpp).

Regenerate (deterministic: every value comes from torch.arange, no random draws; only legacy.pt
differs between runs, its storage keys are Python object ids):

    cd <repo root> && /usr/bin/python3 tests/reference/make_torch_pt_fixtures.py

Needs torch (1.13 or newer) only. Writes tests/fixtures/pt/:

  state_dict.pt    nn.Module.state_dict() (an OrderedDict with _metadata, restored by BUILD):
                   f32 / f16 / bf16 / f64 / i64 / i32 / bool tensors, a 0-d and an empty one,
                   `grid_t` (a transposed, non-contiguous view of `grid`'s storage), `grid_window`
                   (a view with storage_offset 8), `ramp_tail` (storage_offset 3 into a storage
                   no other tensor uses). Pickle protocol 2 (torch.save's default).
  checkpoint.pt    a training checkpoint: {"model": sd with nn.Parameters (keep_vars=True),
                   "ema": sd, "opt": AdamW.state_dict() after one step (int keys), "args":
                   argparse.Namespace(lr=1e-4, model="DiT-S/2"), "steps": 7}.
  protocol4.pt     pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE, EMPTY_SET +
                   ADDITEMS, FROZENSET, SHORT_BINBYTES, LONG1): tensors in lists, tuples, under
                   int keys, next to a set, bytes, a 2**70 int, floats, None, bools.
  os_system.pt     hand-assembled pickle in torch.save's zip layout: one real tensor "weight" and
                   two entries that would run a shell command if unpickled by pickle.load:
                   "evil" = os.system("touch /tmp/dit_torch_pt_os_system_ran") (GLOBAL + REDUCE)
                   and "evil2" = builtins.exec(...) (STACK_GLOBAL + REDUCE). NEVER torch.load it
                   without weights_only=True.
  legacy.pt        the pre-1.6 format (_use_new_zipfile_serialization=False): not a zip.
  expected.json    for the first three files: every tensor key -> dtype, shape, stride,
                   storage_offset and its values (flattened, as float64), as torch.load sees them.
"""
import argparse
import collections
import json
import os
import struct
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "pt")
MARKER = "/tmp/dit_torch_pt_os_system_ran"


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.arange(6.0).reshape(2, 3) / 8)
            self.lin.bias.copy_(torch.tensor([-1.0, 1.0]))
        grid = torch.arange(24, dtype=torch.float32).reshape(4, 6)
        self.register_buffer("grid", grid)
        self.register_buffer("grid_t", grid.t())             # shares grid's storage, strides (1, 6)
        self.register_buffer("grid_window", grid[1:3, 2:5])  # storage_offset 8, strides (6, 1)
        self.register_buffer("f16", (torch.arange(10) / 4).half())
        self.register_buffer("bf16", (torch.arange(6) - 3).to(torch.bfloat16).reshape(2, 3))
        self.register_buffer("f64_scalar", torch.tensor(2.5, dtype=torch.float64))
        self.register_buffer("i64", torch.arange(-3, 4))
        self.register_buffer("ramp_tail", torch.arange(10, dtype=torch.int32)[3:])
        self.register_buffer("mask", torch.arange(5) % 2 == 0)
        self.register_buffer("empty", torch.zeros(0, 3))


def describe(obj, prefix, out):
    """key path -> tensor description, walking dicts / lists / tuples as the C++ reader does."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        out[prefix] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                       "stride": list(t.stride()), "storage_offset": t.storage_offset(),
                       "values": t.double().flatten().tolist()}
    elif isinstance(obj, dict):
        for k, v in obj.items():
            describe(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            describe(v, f"{prefix}.{i}" if prefix else str(i), out)


def save(obj, name, **kw):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kw)
    return path


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    # (a) a plain state dict.
    sd = Tiny().state_dict()
    assert sd["grid_t"].storage().data_ptr() == sd["grid"].storage().data_ptr()
    save(sd, "state_dict.pt")
    expected["state_dict.pt"] = {}
    describe(torch.load(os.path.join(OUT, "state_dict.pt")), "", expected["state_dict.pt"])

    # (b) a training checkpoint.
    model = Tiny()
    opt = torch.optim.AdamW(model.lin.parameters(), lr=1e-3)
    x = torch.arange(6.0).reshape(2, 3) / 4
    model.lin(x).square().sum().backward()
    opt.step()
    ema = {k: (v.detach() * 0.5 if v.is_floating_point() else v.clone())
           for k, v in model.state_dict().items()}
    ckpt = {"model": model.state_dict(keep_vars=True), "ema": ema, "opt": opt.state_dict(),
            "args": argparse.Namespace(lr=1e-4, model="DiT-S/2"), "steps": 7}
    save(ckpt, "checkpoint.pt")
    expected["checkpoint.pt"] = {}
    describe(torch.load(os.path.join(OUT, "checkpoint.pt")), "", expected["checkpoint.pt"])

    # (c) pickle protocol 4.
    base = torch.arange(8, dtype=torch.float32)
    p4 = {"list": [base[:4], base[4:].reshape(2, 2)], "tuple": (torch.arange(3),),
          3: torch.ones(2, dtype=torch.float16),
          "meta": {"set": {1, 2}, "bytes": b"xy", "big": 2 ** 70, "neg": -5, "f": 0.5,
                   "none": None, "flag": True, "fs": frozenset([4]), "name": "p4"}}
    save(p4, "protocol4.pt", pickle_protocol=4)
    expected["protocol4.pt"] = {}
    describe(torch.load(os.path.join(OUT, "protocol4.pt")), "", expected["protocol4.pt"])

    # os.system / exec in a pickle, zipped in torch.save's layout by hand.
    def binunicode(s):
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    weight = (b"c" b"torch._utils\n_rebuild_tensor_v2\n"
              b"((" + binunicode("storage") + b"c" b"torch\nFloatStorage\n" + binunicode("0") +
              binunicode("cpu") + b"K\x04tQ"          # persistent id -> storage 0, 4 floats
              b"K\x00" b"K\x04\x85" b"K\x01\x85" b"\x89"   # offset 0, size (4,), stride (1,), False
              b"c" b"collections\nOrderedDict\n)R"         # backward_hooks
              b"tR")
    evil = b"c" b"os\nsystem\n" + binunicode("touch " + MARKER) + b"\x85R"
    evil2 = (binunicode("builtins") + binunicode("exec") + b"\x93" +
             binunicode(f"open('{MARKER}', 'w').close()") + b"\x85R")
    pkl = (b"\x80\x02}(" + binunicode("weight") + weight + binunicode("evil") + evil +
           binunicode("evil2") + evil2 + b"u.")
    with zipfile.ZipFile(os.path.join(OUT, "os_system.pt"), "w", zipfile.ZIP_STORED) as z:
        for name, data in [("data.pkl", pkl), ("data/0", struct.pack("<4f", 0.0, 1.0, 2.0, 3.0)),
                           ("version", b"3\n")]:
            z.writestr(zipfile.ZipInfo("os_system/" + name, date_time=(2026, 1, 1, 0, 0, 0)), data)

    save({"w": torch.arange(4.0)}, "legacy.pt", _use_new_zipfile_serialization=False)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
