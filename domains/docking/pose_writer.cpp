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
#include <sstream>
#include <unistd.h>

namespace dit::docking {

namespace {
// Atoms per frame in /particles/ligand: the heavy-atom limit plus hydrogens.
constexpr int64_t kAtomCapacity = 384;
constexpr int64_t kBondCapacity = 400;
}  // namespace

struct PoseWriter::Impl {
  std::string sdf_path, h5_path;
  // A resumable writer: the journal and the lock on its output.
  std::string journal_path;
  std::unique_ptr<OutputLock> lock;
  std::unique_ptr<std::ofstream> journal_stream;
  std::vector<LigandEntry> entries;
  int64_t resumed = 0;
  // Declared before the writers: destroyed after them, removing the temporaries.
  std::optional<AtomicOutput> sdf_out, h5_out;
  // The SDF: each ligand's poses go through their own SDWriter, so a record's "(n)" counter is
  // its rank, the same in a resumed file as in one written at once.
  std::unique_ptr<std::ofstream> sdf_stream;
#ifdef DIT_HAVE_HDF5
  std::unique_ptr<h5md::File> h5;
#endif
  int64_t poses = 0;
  bool committed = false;
};

namespace {

// The parameters a resumed screen must share with the run it continues (all but the version).
nlohmann::json comparable(nlohmann::json params) {
  if (params.is_object()) params.erase("version");
  return params;
}

struct JournalLine {
  PoseWriter::LigandEntry entry;
  int64_t sdf_bytes = 0, h5_rows = 0;
};

nlohmann::json to_json(const JournalLine& l) {
  const auto& e = l.entry;
  return {{"index", e.index},         {"name", e.name},
          {"status", e.status},       {"poses", e.poses},
          {"valid", e.valid},         {"best", std::isfinite(e.best_affinity) ? nlohmann::json(e.best_affinity) : nlohmann::json()},
          {"best_valid", e.best_valid}, {"seconds", e.seconds},
          {"sdf_bytes", l.sdf_bytes}, {"h5_rows", l.h5_rows}};
}

JournalLine from_json(const nlohmann::json& j) {
  JournalLine l;
  auto& e = l.entry;
  e.index = j.at("index").get<int64_t>();
  e.name = j.at("name").get<std::string>();
  e.status = j.at("status").get<std::string>();
  e.poses = j.at("poses").get<int>();
  e.valid = j.at("valid").get<int>();
  e.best_affinity = j.at("best").is_null() ? std::numeric_limits<double>::quiet_NaN() : j.at("best").get<double>();
  e.best_valid = j.at("best_valid").get<bool>();
  e.seconds = j.at("seconds").get<double>();
  l.sdf_bytes = j.at("sdf_bytes").get<int64_t>();
  l.h5_rows = j.at("h5_rows").get<int64_t>();
  return l;
}

// Reads an earlier run's journal: checks its parameters, keeps the complete lines (a line cut
// off by a kill is dropped, and the journal truncated to the last complete one).
std::vector<JournalLine> read_journal(const std::string& path, const nlohmann::json& params) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot read the journal: {}", path, std::strerror(errno)));
  std::string line;
  int64_t good_bytes = 0, offset = 0;
  std::vector<JournalLine> lines;
  bool header = true;
  while (std::getline(in, line)) {
    const bool complete = !in.eof();  // ended by a newline
    offset += static_cast<int64_t>(line.size()) + 1;
    if (!complete) break;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception&) {
      break;  // a damaged tail: the run was killed while writing it
    }
    if (header) {
      if (!j.contains("dit_dock_journal") || !j.contains("parameters"))
        throw Error(fmt::format("{}: not a dit dock journal (first line)", path));
      const auto stored = comparable(j["parameters"]), now = comparable(params);
      if (stored != now) {
        std::string key = "?";
        for (const auto& [k, v] : now.items())
          if (!stored.contains(k) || stored[k] != v) { key = k; break; }
        throw Error(fmt::format("{}: an interrupted screen with other settings ('{}' differs: {} then, "
                                "{} now); to start over, remove it and the .partial files beside it, or "
                                "write to another output", path, key, stored.value(key, nlohmann::json()).dump(),
                                now.value(key, nlohmann::json()).dump()));
      }
      header = false;
    } else {
      try {
        lines.push_back(from_json(j));
      } catch (const std::exception& e) {
        throw Error(fmt::format("{}: damaged journal line {}: {}", path, lines.size() + 2, e.what()));
      }
    }
    good_bytes = offset;
  }
  if (header) good_bytes = 0;  // no complete header: start over
  in.close();
  if (::truncate(path.c_str(), good_bytes) != 0)
    throw Error(fmt::format("{}: cannot truncate the journal: {}", path, std::strerror(errno)));
  return lines;
}

int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = dit::fs::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(n);
}

}  // namespace

PoseWriter::PoseWriter(const std::string& sdf_path, const std::string& h5_path,
                       const std::string& parameters_json, bool resumable)
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
  const nlohmann::json params = nlohmann::json::parse(parameters_json);
  auto make_output = [&](const std::string& path) {
    return resumable ? AtomicOutput::resumable(path) : AtomicOutput(path);
  };
  // A resumable writer continues the journal of an earlier run with the same parameters.
  std::vector<JournalLine> earlier;
  bool resume = false;
  if (resumable) {
    const std::string& base = sdf_path.empty() ? h5_path : sdf_path;
    if (base.empty()) throw Error("dit dock: a screen needs an output (-o or --h5)");
    s.journal_path = base + ".journal";
    s.lock = std::make_unique<OutputLock>(base);
    if (dit::fs::exists(s.journal_path)) {
      earlier = read_journal(s.journal_path, params);
      resume = file_bytes(s.journal_path) > 0;
    }
  }
  const int64_t sdf_bytes = earlier.empty() ? 0 : earlier.back().sdf_bytes;
  const int64_t h5_rows = earlier.empty() ? 0 : earlier.back().h5_rows;
  if (!sdf_path.empty()) {
    s.sdf_out.emplace(make_output(sdf_path));
    const auto& temp = s.sdf_out->temp_path();
    if (resume) {
      const int64_t have = file_bytes(temp);
      if (have < sdf_bytes)
        throw Error(fmt::format("{}: holds {} bytes where its journal {} records {}: damaged; remove "
                                "both to start over", temp, have, s.journal_path, sdf_bytes));
      if (::truncate(temp.c_str(), sdf_bytes) != 0)
        throw Error(fmt::format("{}: cannot truncate: {}", temp, std::strerror(errno)));
      s.sdf_stream = std::make_unique<std::ofstream>(temp, std::ios::in | std::ios::out | std::ios::binary);
      if (*s.sdf_stream) s.sdf_stream->seekp(sdf_bytes);
    } else {
      s.sdf_stream = std::make_unique<std::ofstream>(temp, std::ios::trunc | std::ios::binary);
    }
    if (!*s.sdf_stream)
      throw Error(fmt::format("{}: cannot create {}: {}", sdf_path, temp, std::strerror(errno)));
  }
  if (!h5_path.empty()) {
#ifdef DIT_HAVE_HDF5
    s.h5_out.emplace(make_output(h5_path));
    const auto& temp = s.h5_out->temp_path();
    if (resume) {
      if (!dit::fs::exists(temp))
        throw Error(fmt::format("{}: missing, though its journal {} records {} poses: remove the "
                                "journal to start over", temp, s.journal_path, h5_rows));
      s.h5 = std::make_unique<h5md::File>(temp, h5md::Mode::Append);
      if (s.h5->rows("samples/index") < h5_rows)
        throw Error(fmt::format("{}: holds {} poses where its journal {} records {}: damaged; remove "
                                "both to start over", temp, s.h5->rows("samples/index"), s.journal_path, h5_rows));
      s.h5->truncate_rows("", h5_rows);
    } else {
      s.h5 = std::make_unique<h5md::File>(temp, h5md::Mode::Create);
      s.h5->write_json("parameters", params);
      h5md::define_particle_group(*s.h5, {"ligand", kAtomCapacity, "none", kBondCapacity});
      s.h5->set_attribute("observables", "units", "affinity, inter, intra, mm_interaction, mm_strain: kcal/mol; refine_shift, distances: angstrom");
      s.h5->flush();
    }
#else
    throw Error(fmt::format("{}: this build has no HDF5 (install libhdf5-dev and rebuild)", h5_path));
#endif
  }
  for (const auto& l : earlier) {
    s.entries.push_back(l.entry);
    s.poses += l.entry.poses;
  }
  s.resumed = static_cast<int64_t>(earlier.size());
  if (resumable) {
    s.journal_stream = std::make_unique<std::ofstream>(s.journal_path, std::ios::app | std::ios::binary);
    if (!*s.journal_stream)
      throw Error(fmt::format("{}: cannot write the journal: {}", s.journal_path, std::strerror(errno)));
    if (!resume) {
      *s.journal_stream << nlohmann::json{{"dit_dock_journal", 1}, {"parameters", params}}.dump() << '\n';
      s.journal_stream->flush();
    }
  }
}

PoseWriter::~PoseWriter() {
  if (impl_->committed) return;
  impl_->sdf_stream.reset();
#ifdef DIT_HAVE_HDF5
  impl_->h5.reset();
#endif
  impl_->journal_stream.reset();
  impl_->sdf_out.reset();  // removes the temporaries (unless keep() was called)
  impl_->h5_out.reset();
}

const std::vector<PoseWriter::LigandEntry>& PoseWriter::journal() const { return impl_->entries; }
int64_t PoseWriter::resumed() const { return impl_->resumed; }

void PoseWriter::keep() {
  auto& s = *impl_;
  if (s.sdf_stream) s.sdf_stream->flush();
#ifdef DIT_HAVE_HDF5
  if (s.h5) s.h5->flush();
#endif
  if (s.sdf_out) s.sdf_out->keep();
  if (s.h5_out) s.h5_out->keep();
}

void PoseWriter::write_failure(int64_t ligand_index, const std::string& ligand_name,
                               const std::string& reason) {
  auto& s = *impl_;
  LigandEntry e;
  e.index = ligand_index;
  e.name = ligand_name;
  e.status = reason.empty() ? "failed" : reason;
  s.entries.push_back(e);
  if (s.journal_stream) {
    JournalLine l{e, s.sdf_stream ? static_cast<int64_t>(s.sdf_stream->tellp()) : 0, s.poses};
    *s.journal_stream << to_json(l).dump() << '\n';
    s.journal_stream->flush();
  }
}

int64_t PoseWriter::poses_written() const { return impl_->poses; }

void PoseWriter::write(int64_t ligand_index, const std::string& ligand_name,
                       const RDKit::ROMol& ligand, const DockResult& result) {
  auto& s = *impl_;
  std::ostringstream records;
  std::unique_ptr<RDKit::SDWriter> sdf;
  if (s.sdf_stream) sdf = std::make_unique<RDKit::SDWriter>(&records, false);
  std::vector<h5md::StructureSample> samples;
  std::map<std::string, std::vector<double>> observables;
  for (size_t r = 0; r < result.poses.size(); ++r) {
    const auto& pose = result.poses[r];
    auto mol = pose_molecule(ligand, pose, static_cast<int>(r) + 1);
    mol->setProp("_Name", ligand_name);
    mol->setProp("dit_ligand_index", static_cast<int>(ligand_index));
    if (sdf) sdf->write(*mol);
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
    observables["population"].push_back(static_cast<double>(pose.population));
    observables["model_loss"].push_back(pose.model_loss);
    observables["rank_score"].push_back(pose.rank_score);
    if (!pose.checks.values.empty()) {
      for (const auto& v : pose.checks.values) observables["checks/" + v.name].push_back(v.value);
      observables["checks/pb_valid"].push_back(pose.checks.pb_valid() ? 1.0 : 0.0);
    }
  }
  if (sdf) {
    sdf->close();
    *s.sdf_stream << records.str();
    s.sdf_stream->flush();
    if (!*s.sdf_stream) throw Error(fmt::format("{}: write failed: {}", s.sdf_path, std::strerror(errno)));
  }
#ifdef DIT_HAVE_HDF5
  if (s.h5 && !samples.empty()) {
    const int64_t n = static_cast<int64_t>(samples.size());
    auto index = torch::arange(s.poses, s.poses + n, torch::kInt64);
    s.h5->reserve(n * kAtomCapacity * 64 + (1 << 20));
    h5md::append_structures(*s.h5, {"ligand", kAtomCapacity, "none", kBondCapacity}, samples);
    for (auto& [name, values] : observables) {
      if (static_cast<int64_t>(values.size()) != n) continue;  // checks off for some ligands
      auto t = torch::tensor(values, torch::kFloat64);
      if (name == "ligand_index" || name == "rank" || name == "population") t = t.to(torch::kInt64);
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
  LigandEntry e;
  e.index = ligand_index;
  e.name = ligand_name;
  e.status = "ok";
  e.seconds = result.seconds;
  e.poses = static_cast<int>(result.poses.size());
  for (const auto& p : result.poses) e.valid += p.checks.pb_valid();
  if (!result.poses.empty()) {
    e.best_affinity = result.poses.front().affinity;
    e.best_valid = result.poses.front().checks.pb_valid();
  }
  s.entries.push_back(e);
  if (s.journal_stream) {  // after the poses are flushed: a journal line means they are there
    JournalLine l{e, s.sdf_stream ? static_cast<int64_t>(s.sdf_stream->tellp()) : 0, s.poses};
    *s.journal_stream << to_json(l).dump() << '\n';
    s.journal_stream->flush();
  }
}

void PoseWriter::commit() {
  auto& s = *impl_;
  if (s.sdf_stream) {
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
  if (s.journal_stream) {
    s.journal_stream.reset();
    ::unlink(s.journal_path.c_str());
  }
  s.committed = true;
}

}  // namespace dit::docking
