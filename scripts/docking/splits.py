#!/usr/bin/python3
"""The docking complexes' splits, one rule for every script (data/docking/complexes.tsv, column
`split`): `dev` is every development complex, the `heldout` ones included; `heldout` the
development complexes of proteins no bundled training set has (docs/docking.md); `reserved` the
evaluation complexes (never trained or tuned on); `train` extra training complexes
(data/docking/ldh-train.tsv); `all` every row.

  /usr/bin/python3 scripts/docking/splits.py INDEX_TSV SPLIT     # prints the ids, one per line

(prepare-complexes.sh applies the same rule in awk: it runs before Python packages are installed.)
"""
import csv
import sys

SPLITS = ("dev", "heldout", "reserved", "train", "all")


def in_split(row_split, wanted):
    """Whether a row of split `row_split` belongs to the split `wanted`."""
    if wanted not in SPLITS:
        raise ValueError(f"unknown split {wanted!r} (one of {', '.join(SPLITS)})")
    return wanted in ("all", row_split) or (wanted == "dev" and row_split == "heldout")


def ids(index_tsv, wanted):
    """The ids of an index.tsv (prepare-complexes.sh output) in the split `wanted`, file order."""
    with open(index_tsv) as f:
        return [r["id"] for r in csv.DictReader(f, delimiter="\t") if in_split(r["split"], wanted)]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: splits.py INDEX_TSV SPLIT")
    try:
        print("\n".join(ids(sys.argv[1], sys.argv[2])))
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"splits.py: {sys.argv[1]}: {e}")
