// Pose output: SDF with SD tags, and H5MD (see PoseWriter in dit/docking.h).
#include <GraphMol/FileParsers/MolWriters.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <dit/files.h>
#include <dit/h5md.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <dit/fs.h>
#include <fstream>
#include <optional>

namespace dit::docking {

namespace {
// Atoms per frame in /particles/ligand: the heavy-atom limit plus hydrogens.
constexpr int64_t kAtomCapacity = 384;
constexpr int64_t kBondCapacity = 400;
}  // namespace

struct PoseWriter::Impl {
  std::string sdf_path, h5_path;
  // Declared before the writers: destroyed after them, removing the temporaries.
  std::optional<AtomicOutput> sdf_out, h5_out;
  std::unique_ptr<std::ofstream> sdf_stream;
  std::unique_ptr<RDKit::SDWriter> sdf;
#ifdef DIT_HAVE_HDF5
  std::unique_ptr<h5md::File> h5;
#endif
  int64_t poses = 0;
  bool committed = false;
};

PoseWriter::PoseWriter(const std::string& sdf_path, const std::string& h5_path,
                       const std::string& parameters_json)
    : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.sdf_path = sdf_path;
  s.h5_path = h5_path;
  for (const auto& path : {sdf_path, h5_path}) {
    if (path.empty()) continue;
    const auto dir = dit::fs::path(path).parent_path();
    if (!dir.empty() && !dit::fs::is_directory(dir))
      throw Error(fmt::format("{}: directory {} does not exist", path, dir.string()));
  }
  if (!sdf_path.empty()) {
    s.sdf_out.emplace(sdf_path);
    s.sdf_stream = std::make_unique<std::ofstream>(s.sdf_out->temp_path(), std::ios::trunc);
    if (!*s.sdf_stream)
      throw Error(fmt::format("{}: cannot create {}: {}", sdf_path, s.sdf_out->temp_path(), std::strerror(errno)));
    s.sdf = std::make_unique<RDKit::SDWriter>(s.sdf_stream.get(), false);
  }
  if (!h5_path.empty()) {
#ifdef DIT_HAVE_HDF5
    s.h5_out.emplace(h5_path);
    s.h5 = std::make_unique<h5md::File>(s.h5_out->temp_path(), h5md::Mode::Create);
    nlohmann::json params = nlohmann::json::parse(parameters_json);
    s.h5->write_json("parameters", params);
    h5md::define_particle_group(*s.h5, {"ligand", kAtomCapacity, "none", kBondCapacity});
    s.h5->set_attribute("observables", "units", "affinity, inter, intra, mm_interaction, mm_strain: kcal/mol; refine_shift, distances: angstrom");
#else
    throw Error(fmt::format("{}: this build has no HDF5 (install libhdf5-dev and rebuild)", h5_path));
#endif
  }
}

PoseWriter::~PoseWriter() {
  if (impl_->committed) return;
  impl_->sdf.reset();
  impl_->sdf_stream.reset();
#ifdef DIT_HAVE_HDF5
  impl_->h5.reset();
#endif
  impl_->sdf_out.reset();  // removes the temporaries
  impl_->h5_out.reset();
}

int64_t PoseWriter::poses_written() const { return impl_->poses; }

void PoseWriter::write(int64_t ligand_index, const std::string& ligand_name,
                       const RDKit::ROMol& ligand, const DockResult& result) {
  auto& s = *impl_;
  std::vector<h5md::StructureSample> samples;
  std::map<std::string, std::vector<double>> observables;
  for (size_t r = 0; r < result.poses.size(); ++r) {
    const auto& pose = result.poses[r];
    auto mol = pose_molecule(ligand, pose, static_cast<int>(r) + 1);
    mol->setProp("_Name", ligand_name);
    mol->setProp("dit_ligand_index", static_cast<int>(ligand_index));
    if (s.sdf) s.sdf->write(*mol);
    const int64_t A = static_cast<int64_t>(pose.coordinates.size());
    if (A > kAtomCapacity || static_cast<int64_t>(ligand.getNumBonds()) > kBondCapacity)
      throw Error(fmt::format("{}: ligand {} has {} atoms / {} bonds, more than the H5MD capacity {} / {}",
                              s.h5_path, ligand_name, A, ligand.getNumBonds(), kAtomCapacity, kBondCapacity));
    h5md::StructureSample sample;
    sample.index = s.poses + static_cast<int64_t>(r);
    sample.positions = torch::empty({A, 3}, torch::kFloat32);
    sample.species = torch::empty({A}, torch::kInt64);
    auto pos = sample.positions.accessor<float, 2>();
    auto species = sample.species.accessor<int64_t, 1>();
    for (int64_t i = 0; i < A; ++i) {
      for (int k = 0; k < 3; ++k) pos[i][k] = static_cast<float>(pose.coordinates[i][k]);
      species[i] = ligand.getAtomWithIdx(static_cast<unsigned>(i))->getAtomicNum();
    }
    sample.bonds = torch::empty({static_cast<int64_t>(ligand.getNumBonds()), 2}, torch::kInt64);
    auto bonds = sample.bonds.accessor<int64_t, 2>();
    for (const auto* b : ligand.bonds()) {
      bonds[b->getIdx()][0] = b->getBeginAtomIdx();
      bonds[b->getIdx()][1] = b->getEndAtomIdx();
    }
    samples.push_back(std::move(sample));
    observables["ligand_index"].push_back(static_cast<double>(ligand_index));
    observables["rank"].push_back(static_cast<double>(r + 1));
    observables["affinity"].push_back(pose.affinity);
    observables["inter"].push_back(pose.inter);
    observables["intra"].push_back(pose.intra);
    observables["gauss1"].push_back(pose.terms.gauss1);
    observables["gauss2"].push_back(pose.terms.gauss2);
    observables["repulsion"].push_back(pose.terms.repulsion);
    observables["hydrophobic"].push_back(pose.terms.hydrophobic);
    observables["hbond"].push_back(pose.terms.hbond);
    observables["mm_interaction"].push_back(pose.mm_interaction);
    observables["mm_strain"].push_back(pose.mm_strain);
    observables["refine_shift"].push_back(pose.refine_shift);
    if (!pose.checks.values.empty()) {
      for (const auto& v : pose.checks.values) observables["checks/" + v.name].push_back(v.value);
      observables["checks/pb_valid"].push_back(pose.checks.pb_valid() ? 1.0 : 0.0);
    }
  }
  if (s.sdf) s.sdf_stream->flush();
#ifdef DIT_HAVE_HDF5
  if (s.h5 && !samples.empty()) {
    const int64_t n = static_cast<int64_t>(samples.size());
    auto index = torch::arange(s.poses, s.poses + n, torch::kInt64);
    s.h5->reserve(n * kAtomCapacity * 64 + (1 << 20));
    h5md::append_structures(*s.h5, {"ligand", kAtomCapacity, "none", kBondCapacity}, samples);
    for (auto& [name, values] : observables) {
      if (static_cast<int64_t>(values.size()) != n) continue;  // checks off for some ligands
      auto t = torch::tensor(values, torch::kFloat64);
      if (name == "ligand_index" || name == "rank") t = t.to(torch::kInt64);
      h5md::append_observable(*s.h5, name, t, index);
    }
    auto valid = torch::ones({n}, torch::kUInt8);
    for (int64_t r = 0; r < n; ++r)
      if (!result.poses[r].checks.values.empty() && !result.poses[r].checks.pb_valid()) valid[r] = 0;
    h5md::append_sample_records(*s.h5, index, torch::zeros({n}, torch::kInt64), valid);
    s.h5->flush();
  }
#endif
  s.poses += static_cast<int64_t>(samples.size());
}

void PoseWriter::commit() {
  auto& s = *impl_;
  if (s.sdf) {
    s.sdf->close();
    s.sdf.reset();
    s.sdf_stream->close();
    if (!*s.sdf_stream) throw Error(fmt::format("{}: write failed", s.sdf_path));
    s.sdf_stream.reset();
    s.sdf_out->commit();
  }
#ifdef DIT_HAVE_HDF5
  if (s.h5) {
    s.h5->flush();
    s.h5.reset();
    s.h5_out->commit();
  }
#endif
  s.committed = true;
}

}  // namespace dit::docking
