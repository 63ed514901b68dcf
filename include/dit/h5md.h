#pragma once
// HDF5 output in the H5MD 1.1 layout (https://www.nongnu.org/h5md/h5md.html), one file type for
// every domain. The layout is documented in docs/output-format.md; in short:
//
//   /h5md                      version [1, 1]; author/name; creator/{name, version}
//   /particles/<group>/        position/{step, time, value[sample][atom][3]}, species/...,
//                              box (dimension, boundary; edges[sample][3][3] when periodic)
//   /connectivity/<name>/      {step, time, value[sample][bond][2]} (atom indices, -1 = none)
//   /observables/<name>/       {step, time, value[sample]} per-sample scores and check values
//   /parameters/               model config, sampler settings, seeds, the job file (attributes)
//   /images/                   value[sample][C][H][W], label, seed, sample_index (plain datasets)
//
// The first axis of every time-dependent element is the sample axis ("frame" in H5MD terms):
// `step` holds the global sample index and `time` the same number as a float, so sample k of a
// job is frame k of an unsharded or merged file. Variable atom counts are padded to the
// group's fixed atom capacity (NaN positions, species -1) and the true count is the observable
// `<group>/atom_count`, so sample k is read with one hyperslab, no scan.
//
// Crash safety: datasets are chunked and extendable; appends become durable at flush(), and
// reserve() before a batch keeps a full disk from failing a flush halfway. The
// file is opened with free-space reuse off and metadata-cache evictions off, so data written
// after a flush never overwrites what that flush made durable: a process killed between
// flushes leaves the file as of its last flush (readable by h5py, holding whole batches).
#include <dit/domain.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dit {
// True when the engine was built with HDF5 (H5MD output, batch jobs).
bool have_hdf5();
}  // namespace dit

namespace dit::h5md {

// Who wrote the file. `creator_version` defaults to dit-engine's version and git revision.
struct Provenance {
  std::string author;           // default: $USER, else "unknown"
  std::string creator = "dit-engine";
  std::string creator_version;  // default: dit::version_string()
};

enum class Mode {
  Create,  // a new file; fails if `path` exists
  Scratch, // a new file built whole and renamed into place by the caller (merge): replaces
           // `path`, reuses freed space, no crash-safety rules
  Append,  // an existing file opened read-write
  Read,    // read-only
  ReadData,  // read-only, any HDF5 file (prepared training data: no H5MD root metadata)
};

// One open H5MD file. Object paths are relative to the root ("particles/ligand/position").
// Every failure throws dit::Error naming the file and the object.
class File {
 public:
  File(const std::string& path, Mode mode, const Provenance& provenance = {});
  ~File();
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const;

  // --- writing ---------------------------------------------------------------------------
  // Appends `rows` [R, inner...] along axis 0 of the extendable dataset `dataset`, created on
  // first use with the dtype (float32/64, int32/64, uint8, bool as uint8) and inner shape of
  // `rows`, chunked `chunk_rows` rows per chunk. Later appends must match dtype and inner shape.
  // `as_uint64` stores int64 rows as uint64 (their bit pattern), e.g. 64-bit seeds.
  void append_rows(const std::string& dataset, const torch::Tensor& rows, int64_t chunk_rows = 1,
                   bool as_uint64 = false);
  // Appends frames to the time-dependent element `element` (a group holding step, time and
  // value): value gets `values` [F, inner...], step gets `samples` [F] (int64 sample indices),
  // time gets the same numbers as float64.
  void append_frames(const std::string& element, const torch::Tensor& values,
                     const torch::Tensor& samples);
  // A fixed dataset written once (e.g. connectivity that never changes).
  void write_dataset(const std::string& dataset, const torch::Tensor& data);
  // Attributes on a group or dataset (created, or overwritten when they exist). Groups named
  // in `object` are created as needed.
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object, const std::string& name,
                     const std::vector<std::string>& value);
  void set_attribute(const std::string& object, const std::string& name, int64_t value);
  void set_attribute(const std::string& object, const std::string& name, double value);
  void set_attribute(const std::string& object, const std::string& name,
                     const std::vector<int64_t>& value);
  // Writes a JSON object below `group`: objects become subgroups, scalars and arrays of
  // scalars become attributes (strings, int64, float64, bool as int64 0/1).
  void write_json(const std::string& group, const nlohmann::json& object);
  // Shrinks every dataset below `group` (recursively) whose first axis is longer than `rows`
  // to `rows` rows. Used on resume to drop anything past the last complete batch.
  void truncate_rows(const std::string& group, int64_t rows);
  // Makes everything appended so far durable (H5Fflush + fsync).
  void flush();
  // Preallocates `bytes` past the end of the file (fallocate, keeping the file size), so that
  // the appends and the flush that follow cannot run out of space halfway: HDF5 rewrites some
  // metadata in place, and a flush that fails midway on a full disk leaves a file that no longer
  // opens. Throws dit::Error naming the file ("disk full") when the space is not there, before
  // anything is written. A no-op where the filesystem cannot preallocate. The reserve is given
  // back when the file is closed.
  void reserve(int64_t bytes);

  // --- reading ---------------------------------------------------------------------------
  bool exists(const std::string& object) const;
  // Length of axis 0 (0 for a dataset that does not exist).
  int64_t rows(const std::string& dataset) const;
  std::vector<int64_t> shape(const std::string& dataset) const;
  // Rows [begin, begin + count) (count -1: to the end) as a tensor of the stored dtype.
  torch::Tensor read(const std::string& dataset, int64_t begin = 0, int64_t count = -1) const;
  std::optional<std::string> string_attribute(const std::string& object, const std::string& name) const;
  // Names of the direct children of a group (sorted).
  std::vector<std::string> children(const std::string& group) const;
  // Paths of the extendable (chunked) datasets below `group`: the per-sample data.
  std::vector<std::string> extendable_datasets(const std::string& group = "") const;
  // Copies `object` (a group with everything below it, attributes included) from `source`.
  void copy_from(const File& source, const std::string& object);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes the H5MD root metadata (/h5md: version, author, creator) into a new file.
void write_h5md_header(File& file, const Provenance& provenance);

// A particle group of fixed atom capacity for structures of varying size (ligands, proteins,
// crystals). Each append writes one frame per sample.
struct ParticleGroupSpec {
  std::string name;          // "ligand"
  int64_t capacity = 0;      // atoms per frame (padding beyond a sample's atom count)
  std::string boundary = "none";  // "none" (molecules) or "periodic" (crystals)
  int64_t max_bonds = 0;     // > 0: connectivity/<name>_bonds with this many rows per frame
};

struct StructureSample {
  int64_t index = 0;                       // global sample index (the frame's step)
  torch::Tensor positions;                 // float [A, 3] (A <= capacity), angstrom
  torch::Tensor species;                   // int64 [A] (atomic numbers)
  torch::Tensor bonds;                     // int64 [E, 2] atom indices (optional)
  torch::Tensor edges;                     // float [3, 3] cell vectors as rows (periodic only)
};

// Appends structure samples to /particles/<name> (position, species, box edges) and
// /connectivity/<name>_bonds, and their atom counts to /observables/<name>/atom_count.
void append_structures(File& file, const ParticleGroupSpec& spec,
                       const std::vector<StructureSample>& samples);
// Declares the particle group once, at file creation: its box (dimension 3, boundary), its
// capacity, and (max_bonds > 0) the particles_group attribute of its connectivity element.
void define_particle_group(File& file, const ParticleGroupSpec& spec);
// The per-sample record every domain's output ends with, written last in each batch, so its
// length is the number of complete samples: /samples/index (global sample index k),
// /samples/seed (uint64, dit::mix_seed(job seed, k)), /samples/valid (1, or 0 for a sample that
// turned non-finite or failed its domain's checks; such samples are kept, flagged, not dropped).
void append_sample_records(File& file, const torch::Tensor& indices, const torch::Tensor& seeds,
                           const torch::Tensor& valid);
// Appends one observable value per sample: /observables/<name>/{step, time, value}.
void append_observable(File& file, const std::string& name, const torch::Tensor& values,
                       const torch::Tensor& samples);
// The check values of generated structures as observables: /observables/checks/<value> and
// checks/valid (1 when finite and passing every check); a value that some sample lacks (a
// non-finite sample has none) is left out.
template <class S>
void append_check_observables(File& file, const std::vector<Generated<S>>& samples) {
  const auto n = static_cast<int64_t>(samples.size());
  if (n == 0) return;
  std::map<std::string, std::vector<double>> observables;
  auto index = torch::empty({n}, torch::kInt64);
  for (int64_t s = 0; s < n; ++s) {
    const auto& g = samples[s];
    index[s] = g.index;
    for (const auto& v : g.checks.values) observables["checks/" + v.name].push_back(v.value);
    observables["checks/valid"].push_back(g.finite && g.checks.valid() ? 1.0 : 0.0);
  }
  for (auto& [name, values] : observables)
    if (static_cast<int64_t>(values.size()) == n)
      append_observable(file, name, torch::tensor(values, torch::kFloat64), index);
}
// The records of generated structures written in one go (`dit protein sample --h5`, `dit
// crystal sample --h5`): valid = finite and passing every check. Batch jobs' runner writes
// its own records, once per batch.
template <class S>
void append_generated_records(File& file, const std::vector<Generated<S>>& samples, const torch::Tensor& seeds) {
  const auto n = static_cast<int64_t>(samples.size());
  auto index = torch::empty({n}, torch::kInt64);
  auto valid = torch::zeros({n}, torch::kUInt8);
  for (int64_t s = 0; s < n; ++s) {
    index[s] = samples[s].index;
    valid[s] = samples[s].finite && samples[s].checks.valid();
  }
  append_sample_records(file, index, seeds, valid);
}

}  // namespace dit::h5md
