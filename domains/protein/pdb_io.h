#pragma once
// Backbone PDB input and output.
//   read_backbone_pdb: PDB or mmCIF (gzipped or not, read with gemmi), first model; the chain
//     named `chain`, or else the first chain holding an amino-acid residue. Every amino-acid
//     residue of that chain (first conformer; waters and ligands skipped) gives N, CA, C, O and,
//     where present, CB (cb empty when no residue has one; NaN entries elsewhere, see
//     backbone.h). Sequence letters from the residue names (MSE -> 'M', other unknown -> 'X').
//     A residue missing N, CA, C or O, a missing chain, an empty or unreadable file: dit::Error
//     naming the file (and the chain and residue number).
//   write_backbone_pdb: HEADER (mkdssp needs it), fixed-column ATOM records (N, CA, C, O and
//     the finite CBs of non-glycine residues), chain A, residues numbered from 1, occupancy 1,
//     B-factor 0, element symbols, then TER and END. Readable by mkdssp 4.2, TMalign and gemmi.
#include <ostream>
#include <string>

#include "domains/protein/backbone.h"

namespace dit::protein {

// read_backbone_pdb and both write_backbone_pdb overloads are declared in dit/protein.h.

}  // namespace dit::protein
