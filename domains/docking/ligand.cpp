// Ligand preparation with RDKit: sanitise, keep the largest fragment, add hydrogens (with
// coordinates for 3D input), embed a 3D conformer by ETKDG (v3) for SMILES or 2D input; and a
// streaming reader over SDF / SMILES inputs that never holds more than one record.
#include <GraphMol/DistGeomHelpers/Embedder.h>
#include <GraphMol/FileParsers/MolSupplier.h>
#include <GraphMol/MolOps.h>
#include <GraphMol/SmilesParse/SmilesParse.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <fmt/format.h>

#include <cmath>
#include <dit/fs.h>
#include <fstream>
#include <set>

namespace dit::docking {

namespace {

bool allowed_element(int z) {
  static const std::set<int> organic = {1, 5, 6, 7, 8, 9, 14, 15, 16, 17, 34, 35, 53};
  return organic.count(z) > 0;
}

bool has_3d_coordinates(const RDKit::ROMol& mol) {
  if (mol.getNumConformers() == 0) return false;
  const auto& conf = mol.getConformer();
  if (!conf.is3D()) return false;
  for (const auto& p : conf.getPositions())
    if (std::abs(p.z) > 1e-4) return true;
  return false;
}

std::string ends_with_any(const std::string& path, std::initializer_list<const char*> suffixes) {
  for (const char* s : suffixes) {
    const std::string suffix(s);
    if (path.size() >= suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
      return suffix;
  }
  return "";
}

}  // namespace

std::unique_ptr<RDKit::RWMol> prepare_ligand(const RDKit::ROMol& input, const std::string& source,
                                             uint64_t seed, const LigandLimits& limits) {
  auto mol = std::make_unique<RDKit::RWMol>(input);
  if (mol->getNumAtoms() == 0) throw Error(fmt::format("{}: the ligand has no atoms", source));
  try {
    RDKit::MolOps::sanitizeMol(*mol);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: RDKit cannot sanitise the ligand: {}", source, e.what()));
  }
  // Salts, counter-ions and solvents: keep the largest fragment.
  std::vector<std::unique_ptr<RDKit::ROMol>> fragments;
  for (auto& f : RDKit::MolOps::getMolFrags(*mol, true)) fragments.emplace_back(new RDKit::ROMol(*f));
  if (fragments.size() > 1) {
    size_t best = 0;
    for (size_t i = 1; i < fragments.size(); ++i)
      if (fragments[i]->getNumHeavyAtoms() > fragments[best]->getNumHeavyAtoms()) best = i;
    mol = std::make_unique<RDKit::RWMol>(*fragments[best]);
  }
  for (const auto* atom : mol->atoms())
    if (!allowed_element(atom->getAtomicNum()))
      throw Error(fmt::format("{}: atom {} is {} (metals and other non-organic elements are not "
                              "supported by the scoring function)",
                              source, atom->getIdx() + 1, atom->getSymbol()));
  const int heavy = static_cast<int>(mol->getNumHeavyAtoms());
  if (heavy < 2) throw Error(fmt::format("{}: the ligand has {} heavy atom(s); docking needs 2 or more", source, heavy));
  if (heavy > limits.max_heavy_atoms)
    throw Error(fmt::format("{}: the ligand has {} heavy atoms, more than the limit of {}", source,
                            heavy, limits.max_heavy_atoms));

  if (has_3d_coordinates(*mol)) {
    for (const auto& p : mol->getConformer().getPositions())
      if (!std::isfinite(p.x) || !std::isfinite(p.y) || !std::isfinite(p.z))
        throw Error(fmt::format("{}: non-finite atom coordinates", source));
    RDKit::MolOps::assignStereochemistryFrom3D(*mol);
    RDKit::MolOps::addHs(*mol, false, /*addCoords=*/true);
  } else {
    mol->clearConformers();
    RDKit::MolOps::addHs(*mol);
    auto params = RDKit::DGeomHelpers::ETKDGv3;
    params.randomSeed = static_cast<int>(seed & 0x7fffffff);
    if (RDKit::DGeomHelpers::EmbedMolecule(*mol, params) < 0) {
      params.useRandomCoords = true;  // RDKit's fallback for hard cases (macrocycles, cages)
      if (RDKit::DGeomHelpers::EmbedMolecule(*mol, params) < 0)
        throw Error(fmt::format("{}: ETKDG could not embed a 3D conformer", source));
    }
  }
  return mol;
}

struct LigandReader::Impl {
  enum class Kind { Sdf, Smiles, SingleSmiles } kind;
  std::string source;
  uint64_t seed;
  LigandLimits limits;
  std::unique_ptr<std::ifstream> file;
  std::unique_ptr<RDKit::ForwardSDMolSupplier> sdf;
  std::string smiles, smiles_name;
  int64_t index = 0;
  bool done = false;
};

LigandReader::LigandReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LigandReader::LigandReader(LigandReader&&) noexcept = default;
LigandReader::~LigandReader() = default;

LigandReader LigandReader::from_file(const std::string& path, uint64_t seed,
                                     const LigandLimits& limits) {
  if (!dit::fs::is_regular_file(path))
    throw Error(fmt::format("{}: ligand file not found", path));
  auto impl = std::make_unique<Impl>();
  impl->source = path;
  impl->seed = seed;
  impl->limits = limits;
  impl->file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*impl->file) throw Error(fmt::format("{}: cannot open ligand file", path));
  const std::string ext = ends_with_any(path, {".sdf", ".mol", ".sd", ".smi", ".smiles"});
  if (ext == ".smi" || ext == ".smiles") {
    impl->kind = Impl::Kind::Smiles;
  } else if (!ext.empty()) {
    impl->kind = Impl::Kind::Sdf;
    // Not sanitised here: prepare_ligand sanitises and names the reason when it fails.
    impl->sdf = std::make_unique<RDKit::ForwardSDMolSupplier>(impl->file.get(), false,
                                                              /*sanitize=*/false, /*removeHs=*/false);
  } else {
    throw Error(fmt::format("{}: unknown ligand format (expected .sdf, .mol or .smi)", path));
  }
  return LigandReader(std::move(impl));
}

LigandReader LigandReader::from_smiles(const std::string& smiles, const std::string& name,
                                       uint64_t seed, const LigandLimits& limits) {
  auto impl = std::make_unique<Impl>();
  impl->kind = Impl::Kind::SingleSmiles;
  impl->source = "--smiles";
  impl->seed = seed;
  impl->limits = limits;
  impl->smiles = smiles;
  impl->smiles_name = name;
  return LigandReader(std::move(impl));
}

bool LigandReader::next_unprepared(LigandRecord& record) {
  auto& s = *impl_;
  record = LigandRecord{};
  record.index = s.index;
  std::unique_ptr<RDKit::ROMol> raw;
  std::string where;
  try {
    if (s.kind == Impl::Kind::SingleSmiles) {
      if (s.done) return false;
      s.done = true;
      record.name = s.smiles_name;
      where = fmt::format("--smiles '{}'", s.smiles);
      raw.reset(RDKit::SmilesToMol(s.smiles, 0, false));
      if (!raw) throw Error(fmt::format("{}: not a valid SMILES", where));
    } else if (s.kind == Impl::Kind::Smiles) {
      std::string line;
      do {
        if (!std::getline(*s.file, line)) return false;
        if (!line.empty() && line.back() == '\r') line.pop_back();
      } while (line.find_first_not_of(" \t") == std::string::npos || line[0] == '#');
      std::stringstream fields(line);
      std::string smi, name;
      fields >> smi;
      std::getline(fields >> std::ws, name);
      record.name = name.empty() ? fmt::format("{}#{}", s.source, s.index) : name;
      where = fmt::format("{} record {} ({})", s.source, s.index + 1, record.name);
      raw.reset(RDKit::SmilesToMol(smi, 0, false));
      if (!raw) throw Error(fmt::format("{}: not a valid SMILES '{}'", where, smi));
    } else {
      if (s.sdf->atEnd()) return false;
      where = fmt::format("{} record {}", s.source, s.index + 1);
      try {
        raw.reset(s.sdf->next());
      } catch (const std::exception& e) {
        throw Error(fmt::format("{}: malformed SDF record: {}", where, e.what()));
      }
      if (!raw) {
        if (s.sdf->atEnd() && s.file->eof()) {
          // A trailing blank after the last $$$$ is not a record.
          return false;
        }
        throw Error(fmt::format("{}: malformed SDF record (RDKit could not parse the molblock)", where));
      }
      std::string name;
      raw->getPropIfPresent("_Name", name);
      record.name = name.empty() ? fmt::format("{}#{}", s.source, s.index) : name;
      where = fmt::format("{} record {} ({})", s.source, s.index + 1, record.name);
    }
    record.raw = std::move(raw);
    record.where = where;
  } catch (const std::exception& e) {
    record.raw.reset();
    record.error = e.what();
  }
  ++s.index;
  return true;
}

void LigandReader::prepare(LigandRecord& record) const {
  if (!record.raw) return;  // unparsable: `error` says why
  try {
    record.mol = prepare_ligand(*record.raw, record.where, impl_->seed, impl_->limits);
  } catch (const std::exception& e) {
    record.mol.reset();
    record.error = e.what();
  }
  record.raw.reset();
}

bool LigandReader::next(LigandRecord& record) {
  if (!next_unprepared(record)) return false;
  prepare(record);
  return true;
}


std::unique_ptr<RDKit::RWMol> read_ligand(const std::string& path, uint64_t seed,
                                          const LigandLimits& limits) {
  auto reader = LigandReader::from_file(path, seed, limits);
  LigandRecord record;
  if (!reader.next(record)) throw Error(fmt::format("{}: no ligand records", path));
  if (!record.mol) throw Error(record.error);
  return std::move(record.mol);
}

}  // namespace dit::docking
