// Internal energy: UFF energy of the pose over the mean UFF energy of an ensemble of relaxed
// conformers of the same molecule.
//
// PoseBusters `dock` config (posebusters/config/dock.yml, module energy_ratio:
// threshold_energy_ratio: 100.0, ensemble_number_conformations: 50; older PoseBusters releases
// used 7.0, the current dock.yml says 100, which we use). As in
// posebusters/modules/energy_ratio.py: the pose gets hydrogens (addCoords) and its UFF energy
// (UFFGetMoleculeForceField, vdwThresh 100) is E_pose; the ensemble is 50 ETKDGv3 conformers
// (randomSeed 42, useRandomCoords) each UFF-minimised (UFFOptimizeMoleculeConfs, maxIters 200:
// the Python default PoseBusters calls), E_mean their mean energy; passes when
// E_pose / E_mean <= 100. PoseBusters rebuilds the ensemble molecule from the pose's InChI; we
// use the pose's own graph with stereo taken from its 3D coordinates. A pose that cannot be
// sanitised, typed by UFF or embedded 50 times gives NaN (fails, as in PoseBusters).
// Ensemble energies are cached by canonical isomeric SMILES: the poses of one ligand share them.
#include <GraphMol/DistGeomHelpers/Embedder.h>
#include <GraphMol/ForceFieldHelpers/UFF/AtomTyper.h>
#include <GraphMol/ForceFieldHelpers/UFF/Builder.h>
#include <GraphMol/ForceFieldHelpers/UFF/UFF.h>
#include <GraphMol/SmilesParse/SmilesWrite.h>
#include <ForceField/ForceField.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "pose_check_util.h"

namespace dit::docking::checks {
namespace {

constexpr double kMaxEnergyRatio = 100.0;  // dock.yml: threshold_energy_ratio
constexpr int kEnsembleSize = 50;          // dock.yml: ensemble_number_conformations
constexpr int kRandomSeed = 42;            // energy_ratio.py: etkdg.randomSeed
constexpr int kMinimiseIters = 200;        // rdForceFieldHelpers.UFFOptimizeMoleculeConfs default
constexpr unsigned kMaxAttempts = 30;      // embedding attempts per conformer (see below)
constexpr size_t kCacheSize = 256;

double pose_energy(RDKit::ROMol& mol) {
  std::unique_ptr<ForceFields::ForceField> ff(RDKit::UFF::constructForceField(mol, 100.0, 0));
  ff->initialize();
  return ff->calcEnergy();
}

// Mean energy of the relaxed ensemble, NaN when it cannot be built.
double ensemble_mean_energy(const RDKit::ROMol& mol_with_h) {
  RDKit::RWMol mol(mol_with_h);
  RDKit::MolOps::assignStereochemistryFrom3D(mol, 0, true);
  mol.clearConformers();
  RDKit::DGeomHelpers::EmbedParameters params = RDKit::DGeomHelpers::ETKDGv3;
  params.randomSeed = kRandomSeed;
  params.useRandomCoords = true;
  // RDKit seeds conformer i from randomSeed alone, so the ensemble is the same for any thread
  // count: use the threads the run was given (-t).
  params.numThreads = std::max(1, at::get_num_threads());
  // Bounded attempts per conformer (RDKit's default is 10 x the atom count): a drug-like
  // molecule embeds in a few attempts, but a caged ring system whose stereo centres (taken from
  // the pose) cannot be embedded made a screen spend over 10 minutes on this check (NCI 463,
  // a strychnos alkaloid salt). One conformer is tried first: if it cannot be built, neither
  // can the ensemble, and the value is NaN as for any ensemble that cannot be built.
  params.maxIterations = kMaxAttempts;
  {
    RDKit::RWMol probe(mol);
    auto one = params;
    one.numThreads = 1;
    if (RDKit::DGeomHelpers::EmbedMolecule(probe, one) < 0) return kNaN;
  }
  const auto ids = RDKit::DGeomHelpers::EmbedMultipleConfs(mol, kEnsembleSize, params);
  if (static_cast<int>(ids.size()) != kEnsembleSize) return kNaN;
  std::vector<std::pair<int, double>> result;
  RDKit::UFF::UFFOptimizeMoleculeConfs(mol, result, params.numThreads, kMinimiseIters);
  double sum = 0;
  for (const auto& r : result) sum += r.second;
  return result.empty() ? kNaN : sum / static_cast<double>(result.size());
}

double cached_ensemble_mean_energy(const RDKit::ROMol& mol_with_h) {
  static std::mutex mutex;
  static std::map<std::string, double> cache;
  const std::string key = RDKit::MolToSmiles(mol_with_h, /*doIsomericSmiles=*/true);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  const double e = ensemble_mean_energy(mol_with_h);
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= kCacheSize) cache.clear();
  cache[key] = e;
  return e;
}

std::vector<CheckValue> energy_ratio(const PoseCheckInput& in) {
  auto mol = sanitized_copy(in);
  if (!mol) return {failed("internal_energy_ratio", kMaxEnergyRatio)};
  RDKit::MolOps::addHs(*mol, /*explicitOnly=*/false, /*addCoords=*/true);
  if (!RDKit::UFF::getAtomTypes(*mol).second) return {failed("internal_energy_ratio", kMaxEnergyRatio)};
  // Stereo from the pose's coordinates, so that the cache key and the ensemble match the pose.
  RDKit::MolOps::assignStereochemistryFrom3D(*mol, 0, true);
  const double e_pose = pose_energy(*mol);
  double e_mean = cached_ensemble_mean_energy(*mol);
  if (e_mean == 0) e_mean = 1e-10;  // energy_ratio.py: epsilon clipping
  return {at_most("internal_energy_ratio", e_pose / e_mean, kMaxEnergyRatio)};
}

const bool registered_energy_ratio = register_pose_check(
    "energy_ratio",
    "UFF energy of the pose / mean energy of 50 relaxed ETKDG conformers <= 100 (PoseBusters dock)",
    energy_ratio);

}  // namespace
}  // namespace dit::docking::checks
