// The crystal domain in batch jobs: `domain = "crystal"`, one cell per sample.
//   [crystal]
//   compositions = ["Fe6O8", "NaCl"]   # sample k gets compositions[k % len] (required)
//   spacegroup = 0                     # 1..230 conditions on a space group; 0: any
//   repulsion = 0.1                    # step of the repulsion guidance (0: off), as --repulsion
//   anneal = 0                         # anti-annealing slope of the atoms' velocity, as --anneal
// Output: /particles/crystal (cartesian positions, atomic numbers, periodic box per sample),
// /observables/{checks/<value>, checks/valid}, and the /samples records (valid = finite and
// passing every check: failing samples are written and flagged, never dropped).
#include <dit/crystal.h>
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/jobs.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <algorithm>

#include "domains/crystal/output.h"

namespace dit::crystal {
namespace {

class CrystalBatchDomain : public jobs::BatchDomain {
 public:
  void configure(const jobs::Job& job) override {
    const std::string where = fmt::format("{}: [crystal]", job.path);
    for (const auto& [key, value] : job.domain_options.items()) {
      if (key == "compositions") {
        if (!value.is_array() || value.empty())
          throw Error(fmt::format("{} compositions: must be a non-empty array of formulas", where));
        for (const auto& v : value) {
          if (!v.is_string()) throw Error(fmt::format("{} compositions: {} is not a formula string", where, v.dump()));
          try {
            compositions_.push_back(parse_composition(v.get<std::string>()));
          } catch (const Error& e) {
            throw Error(fmt::format("{} compositions: {}", where, e.what()));
          }
          names_.push_back(v.get<std::string>());
        }
      } else if (key == "spacegroup") {
        if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 230)
          throw Error(fmt::format("{} spacegroup: {} is not 0 (any) or 1..230", where, value.dump()));
        spacegroup_ = value.get<int>();
      } else if (key == "repulsion" || key == "anneal") {
        if (!value.is_number() || !(value.get<double>() >= 0))
          throw Error(fmt::format("{} {}: {} is not a number >= 0", where, key, value.dump()));
        (key == "repulsion" ? repulsion_ : anneal_) = value.get<double>();
      } else {
        throw Error(fmt::format("{} {}: unknown key in [crystal]", where, key));
      }
    }
    if (compositions_.empty()) throw Error(fmt::format("{} compositions: required (e.g. [\"Fe6O8\"])", where));
    model_path_ = job.model.empty() ? default_crystal_model_path() : job.model;
    model_ = load_crystal_model(model_path_);
    place_for_sampling(*model_.net, Placement{job.device, job.dtype}, job.path + ": device",
                       job.path + ": dtype");
    sampling_.sampler = job.sampler.name;
    sampling_.options = job.sampler.options;
    sampling_.guidance = job.sampler.guidance;
    sampling_.seed = job.seed;
    sampling_.chunk = job.batch_size;
    domain_ = std::make_unique<CrystalDomain>(model_.scaling, repulsion_, anneal_);
    domain_->use_sampling(sampling_);
    for (const auto& c : compositions_) {
      int64_t n = 0;
      for (const auto& [z, count] : c) n += count;
      max_atoms_ = std::max(max_atoms_, n);
    }
  }

  const Composition& composition(int64_t sample) const {
    return compositions_[static_cast<size_t>(sample) % compositions_.size()];
  }
  int64_t tokens(int64_t sample) const override {
    int64_t n = 0;
    for (const auto& [z, count] : composition(sample)) n += count;
    return n + 2;
  }

  std::vector<std::string> describe() const override {
    return {fmt::format("model {} ({})", model_path_, model_.net->describe()),
            fmt::format("compositions {} (sample k gets compositions[k % {}]), space group {}", fmt::join(names_, ","),
                        names_.size(), spacegroup_ == 0 ? std::string("any") : std::to_string(spacegroup_))};
  }

  nlohmann::json parameters() const override {
    const auto& c = model_.net->config();
    return {{"model", {{"path", model_path_}, {"config", c.describe()}, {"hidden_size", c.hidden_size},
                       {"depth", c.depth}, {"num_heads", c.num_heads}}},
            {"crystal", {{"compositions", names_}, {"spacegroup", spacegroup_}, {"repulsion", repulsion_},
                         {"anneal", anneal_}}}};
  }

  void create_output(h5md::File& file) const override { h5md::define_particle_group(file, crystal_group(max_atoms_)); }

  std::vector<bool> run_batch(const jobs::Batch& batch, h5md::File& file, Progress& progress) override {
    torch::Tensor seeds;
    std::vector<bool> valid;
    auto out = jobs::generate_batch(
        *domain_, *model_.net, batch, [&](int64_t k) { return CrystalRequest{composition(k), spacegroup_}; },
        sampling_, progress, seeds, valid);
    append_crystals(file, max_atoms_, out, seeds);
    return valid;
  }

 private:
  std::vector<Composition> compositions_;
  std::vector<std::string> names_;
  int spacegroup_ = 0;
  double repulsion_ = CrystalDomain::kDefaultRepulsion, anneal_ = CrystalDomain::kDefaultAnneal;
  int64_t max_atoms_ = 0;
  std::string model_path_;
  CrystalModel model_;
  std::unique_ptr<CrystalDomain> domain_;
  FlowSampling sampling_;
};

}  // namespace

DIT_REGISTER_BATCH_DOMAIN("crystal", CrystalBatchDomain);

}  // namespace dit::crystal
