// Receptor: a protein read with gemmi (PDB / mmCIF, gzipped or not), waters removed, every
// heavy atom given its X-Score type for the Vina-like score.
#include <dit/docking.h>
#include <dit/error.h>
#include <fmt/format.h>
// gemmi is header-only; its reader definitions are compiled here, once.
#define GEMMI_READ_COOR_IMPLEMENTATION
#include <gemmi/read_coor.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <dit/fs.h>
#include <set>
#include <algorithm>

#include "domains/docking/cell_list.h"

namespace dit::docking {

std::vector<int> Receptor::heavy_atoms() const {
  std::vector<int> out;
  for (size_t i = 0; i < atoms.size(); ++i)
    if (atoms[i].atomic_number > 1) out.push_back(static_cast<int>(i));
  return out;
}

namespace {

double distance2(const Vec3& a, const Vec3& b) {
  const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
  return dx * dx + dy * dy + dz * dz;
}

// Covalent bonds by distance: d < 1.1 (r_i + r_j), Vina's bonding rule.
std::vector<std::vector<int>> perceive_bonds(const std::vector<ReceptorAtom>& atoms,
                                             const std::vector<double>& covalent) {
  std::vector<Vec3> positions;
  for (const auto& a : atoms) positions.push_back(a.position);
  const double max_radius = covalent.empty() ? 0 : *std::max_element(covalent.begin(), covalent.end());
  const CellList cells(positions, 3.0);
  std::vector<std::vector<int>> neighbours(atoms.size());
  for (size_t i = 0; i < atoms.size(); ++i) {
    cells.near(positions[i], 1.1 * (covalent[i] + max_radius), [&](int j) {
      if (j <= static_cast<int>(i)) return;
      const double cut = 1.1 * (covalent[i] + covalent[j]);
      if (distance2(positions[i], positions[j]) < cut * cut) {
        neighbours[i].push_back(j);
        neighbours[j].push_back(static_cast<int>(i));
      }
    });
  }
  return neighbours;
}

// Hydrogen-bond roles of standard residues when the file has no hydrogens.
bool template_donor(const ReceptorAtom& a) {
  static const std::set<std::pair<std::string, std::string>> donors = {
      {"ARG", "NE"},  {"ARG", "NH1"}, {"ARG", "NH2"}, {"ASN", "ND2"}, {"GLN", "NE2"},
      {"HIS", "ND1"}, {"HIS", "NE2"}, {"LYS", "NZ"},  {"TRP", "NE1"}, {"SER", "OG"},
      {"THR", "OG1"}, {"TYR", "OH"},  {"CYS", "SG"}};
  if (a.name == "N" && a.residue != "PRO" && !a.hetero) return true;  // backbone amide
  return donors.count({a.residue, a.name}) > 0;
}
bool template_nitrogen_acceptor(const ReceptorAtom& a) {
  return a.residue == "HIS" && (a.name == "ND1" || a.name == "NE2");
}

// gemmi reads a PDB ATOM/HETATM record that was cut short (a truncated download or copy) as an
// atom with missing coordinates; refuse it, naming the file and line. Plain-text PDB only
// (gzip and mmCIF files are left to gemmi).
void check_pdb_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (number == 1 && line.size() >= 2 && static_cast<unsigned char>(line[0]) == 0x1f &&
        static_cast<unsigned char>(line[1]) == 0x8b)
      return;  // gzip
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data_", 0) == 0) return;  // mmCIF
    if (line.rfind("ATOM  ", 0) != 0 && line.rfind("HETATM", 0) != 0) continue;
    if (line.size() < 54)
      throw Error(fmt::format("{}:{}: {} record cut short ({} characters; x, y, z need columns "
                              "31-54): a truncated file?",
                              path, number, line.substr(0, 6), line.size()));
    for (size_t col : {30, 38, 46}) {
      const std::string field = line.substr(col, 8);
      char* end = nullptr;
      const double v = std::strtod(field.c_str(), &end);
      while (end && *end == ' ') ++end;
      if (end == field.c_str() || (end && *end != '\0') || !std::isfinite(v))
        throw Error(fmt::format("{}:{}: {} record: coordinate '{}' (columns {}-{}) is not a number",
                                path, number, line.substr(0, 6), field, col + 1, col + 8));
    }
  }
}

}  // namespace

Receptor read_receptor(const std::string& path, const std::string& drop_residue) {
  if (!dit::fs::exists(path)) throw Error(fmt::format("{}: receptor file not found", path));
  check_pdb_records(path);
  gemmi::Structure st;
  try {
    st = gemmi::read_structure_gz(path);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: not a readable PDB/mmCIF receptor: {}", path, e.what()));
  }
  if (st.models.empty()) throw Error(fmt::format("{}: no models (no ATOM/HETATM records)", path));
  Receptor receptor;
  receptor.source = path;
  std::vector<double> covalent;
  for (const auto& chain : st.models.front().chains) {
    for (const auto& residue : chain.residues) {
      if (residue.is_water() || (!drop_residue.empty() && residue.name == drop_residue)) continue;
      for (const auto& atom : residue.atoms) {
        if (atom.altloc != '\0' && atom.altloc != 'A') continue;  // first alternate location
        if (atom.element == gemmi::El::X)
          throw Error(fmt::format("{}: atom '{}' of {} {}{}: unknown element (column 77-78)", path,
                                  atom.name, residue.name, chain.name, residue.seqid.str()));
        ReceptorAtom a;
        a.position = {atom.pos.x, atom.pos.y, atom.pos.z};
        for (double v : a.position)
          if (!std::isfinite(v))
            throw Error(fmt::format("{}: atom '{}' of {} {}{}: non-finite coordinate", path,
                                    atom.name, residue.name, chain.name, residue.seqid.str()));
        a.atomic_number = atom.element.atomic_number();
        if (a.atomic_number == 2 /* D */) a.atomic_number = 1;
        a.name = atom.name;
        a.residue = residue.name;
        a.chain = chain.name;
        a.residue_number = residue.seqid.num.value;
        a.hetero = residue.het_flag == 'H';
        receptor.atoms.push_back(a);
        covalent.push_back(atom.element.is_metal() ? 0.0 : atom.element.covalent_r());
      }
    }
  }
  if (receptor.atoms.empty()) throw Error(fmt::format("{}: no protein atoms", path));

  const auto neighbours = perceive_bonds(receptor.atoms, covalent);
  bool has_hydrogens = false;
  for (const auto& a : receptor.atoms) has_hydrogens |= a.atomic_number == 1;
  for (size_t i = 0; i < receptor.atoms.size(); ++i) {
    auto& a = receptor.atoms[i];
    int heavy_neighbours = 0, hydrogens = 0;
    bool hetero_neighbour = false;
    double nearest_carbon = 1e9;
    for (int j : neighbours[i]) {
      const auto& b = receptor.atoms[j];
      if (b.atomic_number == 1) {
        ++hydrogens;
        continue;
      }
      ++heavy_neighbours;
      hetero_neighbour |= b.atomic_number != 6;
      if (b.atomic_number == 6)
        nearest_carbon = std::min(nearest_carbon, std::sqrt(distance2(a.position, b.position)));
    }
    const bool donor = has_hydrogens ? hydrogens > 0 : template_donor(a);
    switch (a.atomic_number) {
      case 1: a.type = XsType::Other; break;
      case 6: a.type = hetero_neighbour ? XsType::C_P : XsType::C_H; break;
      case 7: {
        bool acceptor = template_nitrogen_acceptor(a);
        if (a.hetero) acceptor = hydrogens == 0 && heavy_neighbours < 3;
        a.type = donor ? (acceptor ? XsType::N_DA : XsType::N_D) : (acceptor ? XsType::N_A : XsType::N_P);
        break;
      }
      case 8: {
        // Without hydrogens, a cofactor's hydroxyl is told from a carbonyl by its C-O length.
        const bool hydroxyl = a.hetero && !has_hydrogens && heavy_neighbours == 1 && nearest_carbon > 1.36;
        a.type = (donor || hydroxyl) ? XsType::O_DA : XsType::O_A;
        break;
      }
      case 9: a.type = XsType::F_H; break;
      case 15: a.type = XsType::P_P; break;
      case 16: a.type = XsType::S_P; break;
      case 17: a.type = XsType::Cl_H; break;
      case 35: a.type = XsType::Br_H; break;
      case 53: a.type = XsType::I_H; break;
      default:
        a.type = gemmi::Element(a.atomic_number).is_metal() ? XsType::Met_D : XsType::Other;
    }
  }
  return receptor;
}

Receptor pocket_atoms(const Receptor& receptor, const Box& box, double cutoff) {
  Receptor pocket;
  pocket.source = receptor.source;
  for (const auto& a : receptor.atoms) {
    double d2 = 0;
    for (int k = 0; k < 3; ++k) {
      const double excess = std::abs(a.position[k] - box.center[k]) - 0.5 * box.size[k];
      if (excess > 0) d2 += excess * excess;
    }
    if (d2 <= cutoff * cutoff) pocket.atoms.push_back(a);
  }
  return pocket;
}

}  // namespace dit::docking
