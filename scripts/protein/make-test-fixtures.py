#!/usr/bin/python3
"""Writes the protein-backbone test fixtures from promod3's structure_db (package promod3-data).

    /usr/bin/python3 scripts/protein/make-test-fixtures.py            # tests/data/protein/
    /usr/bin/python3 scripts/protein/make-test-fixtures.py --calibrate 200 /tmp/protein-calib

For each chain: NAME.pdb (N, CA, C, O and CB for non-glycine residues, fixed-column ATOM records
in the same layout as dit::protein::write_backbone_pdb) and NAME.mkdssp.txt (one line: the
mkdssp secondary-structure letter per residue, ' ' written as '-').

mkdssp (Debian 12, dssp 4.2.2) takes a PDB file only when it starts with a HEADER record
(otherwise it assumes mmCIF and fails: "Since the file did not start with a valid PDB HEADER
line mmCIF was assumed"); the command used is

    mkdssp --output-format dssp NAME.pdb NAME.dssp

and the letter is column 17 of each residue line after the "  #  RESIDUE" header ('!' lines,
chain breaks, are skipped). Chains have 50..300 residues and no break (every consecutive
CA-CA <= 4.2 A and C-N <= 2.0 A).
"""
import math
import os
import subprocess
import sys
import tempfile

import promod3.loop as L

THREE = dict(A='ALA', R='ARG', N='ASN', D='ASP', C='CYS', Q='GLN', E='GLU', G='GLY', H='HIS',
             I='ILE', L='LEU', K='LYS', M='MET', F='PHE', P='PRO', S='SER', T='THR', W='TRP',
             Y='TYR', V='VAL')
# Fixture chains (structure_db indices): mixed, helical and beta chains of 68..117 residues.
FIXTURES = [291, 1455, 5335, 7275, 6790, 3104]
HEADER = 'HEADER    PROTEIN BACKBONE                        01-JAN-00   %-4s              '
MKDSSP = ['mkdssp', '--output-format', 'dssp']


def dist(a, b):
    return math.sqrt(sum((a[k] - b[k]) ** 2 for k in range(3)))


def chain(db, i):
    ci = db.GetCoordInfo(i)
    frag = L.FragmentInfo(i, 0, ci.size)
    seq = db.GetSequence(frag)
    bb = db.GetBackboneList(frag, seq)
    start = db.GetStartResnum(frag)
    return ci, seq, bb, start


def unbroken(seq, bb):
    return all(dist(bb.GetCA(r), bb.GetCA(r + 1)) <= 4.2 and dist(bb.GetC(r), bb.GetN(r + 1)) <= 2.0
               for r in range(len(seq) - 1))


def pdb_text(name, seq, bb, start):
    lines = [HEADER % name[:4]]
    k = 1
    for r in range(len(seq)):
        res = THREE.get(seq[r], 'ALA')
        atoms = [(' N  ', bb.GetN(r), 'N'), (' CA ', bb.GetCA(r), 'C'), (' C  ', bb.GetC(r), 'C'),
                 (' O  ', bb.GetO(r), 'O')]
        if seq[r] != 'G':
            atoms.append((' CB ', bb.GetCB(r), 'C'))
        for atom, v, el in atoms:
            lines.append('ATOM  %5d %4s %3s %1s%4d    %8.3f%8.3f%8.3f%6.2f%6.2f          %2s' %
                         (k, atom, res, 'A', start + r, v[0], v[1], v[2], 1.0, 0.0, el))
            k += 1
    lines.append('TER   %5d      %3s %1s%4d' % (k, THREE.get(seq[-1], 'ALA'), 'A', start + len(seq) - 1))
    lines.append('END')
    return '\n'.join(lines) + '\n'


def mkdssp(pdb_path):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'out.dssp')
        subprocess.run(MKDSSP + [pdb_path, out], check=True)
        text = open(out).read().splitlines()
    at = next(k for k, l in enumerate(text) if l.startswith('  #  RESIDUE'))
    ss = ''
    for l in text[at + 1:]:
        if l[13] == '!':
            continue
        ss += l[16] if l[16] != ' ' else '-'
    return ss


def write(db, i, directory):
    ci, seq, bb, start = chain(db, i)
    name = '%s_%s' % (ci.id, ci.chain_name)
    path = os.path.join(directory, name + '.pdb')
    with open(path, 'w') as f:
        f.write(pdb_text(ci.id, seq, bb, start))
    ss = mkdssp(path)
    assert len(ss) == len(seq), (name, len(ss), len(seq))
    with open(os.path.join(directory, name + '.mkdssp.txt'), 'w') as f:
        f.write(ss + '\n')
    return name


def main():
    db = L.LoadStructureDB()
    if len(sys.argv) >= 2 and sys.argv[1] == '--calibrate':
        count, directory = int(sys.argv[2]), sys.argv[3]
        os.makedirs(directory, exist_ok=True)
        # Every 61st chain (fixed, deterministic), 50..300 residues, no break, not a fixture.
        names = []
        for i in range(13, db.GetNumCoords(), 61):
            if len(names) >= count:
                break
            ci, seq, bb, start = chain(db, i)
            if i in FIXTURES or not (50 <= ci.size <= 300) or not unbroken(seq, bb):
                continue
            names.append(write(db, i, directory))
        print('%d chains in %s' % (len(names), directory))
        return
    here = os.path.dirname(os.path.abspath(__file__))
    directory = os.path.join(here, '..', '..', 'tests', 'data', 'protein')
    os.makedirs(directory, exist_ok=True)
    for i in FIXTURES:
        ci, seq, bb, start = chain(db, i)
        assert 50 <= ci.size <= 300 and unbroken(seq, bb), i
        print(write(db, i, directory))


if __name__ == '__main__':
    main()
