#include "domains/protein/pdb_io.h"

#include <dit/error.h>
#include <dit/files.h>
// gemmi is header-only; read_structure and MaybeGzipped are inline (no *_IMPLEMENTATION here).
#include <gemmi/gz.hpp>
#include <gemmi/mmread.hpp>
#include <gemmi/resinfo.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <dit/fs.h>
#include <fstream>
#include <limits>
#include <sstream>

namespace dit::protein {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool is_amino_acid(const gemmi::Residue& r) { return gemmi::find_tabulated_residue(r.name).is_amino_acid(); }

char sequence_letter(const gemmi::Residue& r) {
  const gemmi::ResidueInfo info = gemmi::find_tabulated_residue(r.name);
  const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(info.one_letter_code)));
  return std::isalpha(static_cast<unsigned char>(c)) ? c : 'X';
}

Vec3 position(const gemmi::Atom& a) { return {a.pos.x, a.pos.y, a.pos.z}; }

}  // namespace

Backbone read_backbone_pdb(const std::string& path, const std::string& chain_name) {
  if (!dit::fs::exists(path)) throw Error(path + ": backbone file not found");
  gemmi::Structure st;
  try {
    st = gemmi::read_structure(gemmi::MaybeGzipped(path));
  } catch (const std::exception& e) {
    throw Error(path + ": not a readable PDB/mmCIF file: " + e.what());
  }
  if (st.models.empty() || st.models[0].chains.empty())
    throw Error(path + ": no models (no ATOM/HETATM records)");
  const gemmi::Model& model = st.models[0];
  const gemmi::Chain* chain = nullptr;
  for (const gemmi::Chain& ch : model.chains) {
    if (!chain_name.empty() ? ch.name == chain_name
                            : std::any_of(ch.residues.begin(), ch.residues.end(), is_amino_acid)) {
      chain = &ch;
      break;
    }
  }
  if (chain == nullptr)
    throw Error(path + (chain_name.empty() ? ": no protein chain (no amino-acid residue) in the first model"
                                           : ": no chain '" + chain_name + "' in the first model"));
  Backbone b;
  b.name = dit::fs::path(path).stem().string();
  bool any_cb = false;
  std::vector<Vec3> cb;
  for (const gemmi::Residue& r : chain->first_conformer()) {
    if (!is_amino_acid(r)) continue;
    const gemmi::Atom* atoms[4] = {r.find_atom("N", '*'), r.find_atom("CA", '*'), r.find_atom("C", '*'),
                                   r.find_atom("O", '*')};
    static const char* kNames[4] = {"N", "CA", "C", "O"};
    for (int k = 0; k < 4; ++k)
      if (atoms[k] == nullptr)
        throw Error(path + ": chain " + chain->name + " residue " + r.name + " " + r.seqid.str() +
                    ": missing backbone atom " + kNames[k] + " (N, CA, C and O are required)");
    b.n.push_back(position(*atoms[0]));
    b.ca.push_back(position(*atoms[1]));
    b.c.push_back(position(*atoms[2]));
    b.o.push_back(position(*atoms[3]));
    b.sequence.push_back(sequence_letter(r));
    const gemmi::Atom* beta = r.find_atom("CB", '*');
    any_cb = any_cb || beta != nullptr;
    cb.push_back(beta != nullptr ? position(*beta) : Vec3{kNaN, kNaN, kNaN});
  }
  if (b.size() == 0) throw Error(path + ": chain " + chain->name + " has no amino-acid residue");
  if (any_cb) b.cb = std::move(cb);
  return b;
}

void write_backbone_pdb(const Backbone& b, std::ostream& out) {
  validate(b);
  char line[96];
  std::string id = b.name.substr(0, 4);
  std::snprintf(line, sizeof line, "HEADER    %-40s01-JAN-00   %-4s              \n", "PROTEIN BACKBONE",
                id.c_str());
  out << line;
  int serial = 1;
  auto atom = [&](const char* name, const std::string& res, int resnum, const Vec3& p, const char* element) {
    for (double x : p)
      if (!std::isfinite(x) || std::fabs(x) >= 9999.9995)
        throw Error("backbone '" + b.name + "': residue " + std::to_string(resnum) + " atom" + name +
                    ": coordinate not finite or beyond the PDB format's 8.3f columns");
    std::snprintf(line, sizeof line, "ATOM  %5d %-4s %3s A%4d    %8.3f%8.3f%8.3f%6.2f%6.2f          %2s\n",
                  serial % 100000, name, res.c_str(), resnum % 10000, p[0], p[1], p[2], 1.0, 0.0, element);
    out << line;
    ++serial;
  };
  for (size_t i = 0; i < b.size(); ++i) {
    const std::string res = three_letter_code(b.sequence[i]);
    const int resnum = static_cast<int>(i) + 1;
    atom(" N", res, resnum, b.n[i], "N");
    atom(" CA", res, resnum, b.ca[i], "C");
    atom(" C", res, resnum, b.c[i], "C");
    atom(" O", res, resnum, b.o[i], "O");
    if (b.sequence[i] != 'G' && has_cb(b, i)) atom(" CB", res, resnum, b.cb[i], "C");
  }
  if (b.size() > 0) {
    std::snprintf(line, sizeof line, "TER   %5d      %3s A%4d\n", serial % 100000,
                  three_letter_code(b.sequence.back()).c_str(), static_cast<int>(b.size()) % 10000);
    out << line;
  }
  out << "END\n";
}

void write_backbone_pdb(const Backbone& b, const std::string& path) {
  std::ostringstream text;
  write_backbone_pdb(b, text);
  write_file_atomic(path, text.str());  // dit::AtomicOutput: temporary, fsync, rename
}

}  // namespace dit::protein
