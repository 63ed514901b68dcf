// The protein domain in batch jobs: `domain = "protein"`, one backbone per sample.
//   [protein]
//   lengths = [60, 90, 120]   # sample k gets lengths[k % len] (8..512 residues); default [100]
//   relax = true              # restrained OpenMM minimisation of each rebuilt backbone
//   secondary_structure = "none"  # or "library": a real chain's string per sample (dit protein
//                             # sample --ss library), through the guidance and/or the model's input
//   ss_restraint = 1.0        # scale of the guidance's restraints toward the string (0: none)
//   compactness = 1.0         # scale of the guidance's pull on over-extended chains (0: none)
// Output: /particles/backbone (N, CA, C, O, CB per residue; atom_count = 5 x length),
// /observables/{length, checks/<value>, checks/valid}, and the /samples records (valid = finite
// and passing every check: failing samples are written and flagged, never dropped).
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/jobs.h>
#include <dit/protein.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#include <algorithm>
#include <limits>

#include "domains/protein/output.h"

namespace dit::protein {
namespace {

class ProteinBatchDomain : public jobs::BatchDomain {
 public:
  void configure(const jobs::Job& job) override {
    const std::string where = fmt::format("{}: [protein]", job.path);
    DecodeOptions decode;
    TraceGuidance guidance;
    // A number in [0, hi], or an error naming the file, the table and the key.
    constexpr double kNoUpperBound = std::numeric_limits<double>::infinity();
    auto number = [&](const std::string& key, const nlohmann::json& value, double hi, const char* expected) {
      if (!value.is_number() || !(value.get<double>() >= 0 && value.get<double>() <= hi))
        throw Error(fmt::format("{} {}: must be {}", where, key, expected));
      return value.get<double>();
    };
    for (const auto& [key, value] : job.domain_options.items()) {
      if (key == "lengths") {
        if (!value.is_array() || value.empty())
          throw Error(fmt::format("{} lengths: must be a non-empty array of chain lengths", where));
        for (const auto& v : value) {
          if (!v.is_number_integer() || v.get<int64_t>() < kMinLength || v.get<int64_t>() > kMaxLength)
            throw Error(fmt::format("{} lengths: {} is not a chain length in {}..{}", where, v.dump(),
                                    kMinLength, kMaxLength));
          lengths_.push_back(v.get<int64_t>());
        }
      } else if (key == "secondary_structure") {
        if (!value.is_string() || (value != "none" && value != "library"))
          throw Error(fmt::format("{} secondary_structure: must be \"none\" or \"library\"", where));
        ss_library_ = value == "library";
      } else if (key == "relax") {
        if (!value.is_boolean()) throw Error(fmt::format("{} relax: must be true or false", where));
        decode.relax = value.get<bool>();
      } else if (key == "rama_restraint") {
        decode.rama_restraint = number(key, value, kNoUpperBound, "a number >= 0 (0: none)");
      } else if (key == "polish_rounds") {
        if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 10)
          throw Error(fmt::format("{} polish_rounds: must be an integer in 0..10", where));
        decode.polish_rounds = static_cast<int>(value.get<int64_t>());
      } else if (key == "trace_guidance") {
        guidance.weight = number(key, value, 1.0, "a number in [0, 1] (0: the model alone)");
      } else if (key == "ss_restraint") {
        guidance.secondary_structure = number(key, value, kNoUpperBound, "a number >= 0 (0: none)");
      } else if (key == "compactness") {
        guidance.compactness = number(key, value, kNoUpperBound, "a number >= 0 (0: none)");
      } else if (key == "trace_guidance_t_max") {
        guidance.t_max = number(key, value, 1.0, "a number in [0, 1]");
      } else {
        throw Error(fmt::format("{} {}: unknown key in [protein]", where, key));
      }
    }
    if (lengths_.empty()) lengths_ = {100};
    relax_ = decode.relax;
    model_path_ = job.model.empty() ? default_protein_model_path() : job.model;
    model_ = load_protein_model(model_path_);
    const bool takes_ss = takes_secondary_structure(*model_);
    if (ss_library_ && !takes_ss && !(guidance.weight > 0 && guidance.secondary_structure > 0))
      throw Error(fmt::format("{} secondary_structure: {} does not take secondary structure as input, and "
                              "without trace_guidance and ss_restraint above 0 the strings would do nothing",
                              where, model_path_));
    if (ss_library_) library_ = std::make_unique<SecondaryStructureLibrary>();
    domain_ = std::make_unique<ProteinDomain>(decode, guidance, takes_ss);
    place_for_sampling(*model_, Placement{job.device, job.dtype}, job.path + ": device",
                       job.path + ": dtype");
    sampling_.sampler = job.sampler.name;
    sampling_.options = job.sampler.options;
    sampling_.guidance = job.sampler.guidance;
    sampling_.seed = job.seed;
    sampling_.chunk = job.batch_size;
    max_length_ = *std::max_element(lengths_.begin(), lengths_.end());
  }

  int64_t length(int64_t sample) const { return lengths_[static_cast<size_t>(sample) % lengths_.size()]; }
  int64_t tokens(int64_t sample) const override { return length(sample); }

  std::vector<std::string> describe() const override {
    return {fmt::format("model {} ({})", model_path_, model_->describe()),
            fmt::format("lengths {} (sample k gets lengths[k % {}]), relax {}", fmt::join(lengths_, ","),
                        lengths_.size(), relax_)};
  }

  nlohmann::json parameters() const override {
    const auto& c = model_->config();
    return {{"model", {{"path", model_path_}, {"config", c.describe()}, {"hidden_size", c.hidden_size},
                       {"depth", c.depth}, {"num_heads", c.num_heads}}},
            {"protein", {{"lengths", lengths_}, {"relax", relax_}, {"representation", "ca-trace"},
                         {"secondary_structure", ss_library_ ? "library" : "none"}}}};
  }

  void create_output(h5md::File& file) const override {
    h5md::define_particle_group(file, backbone_group(max_length_));
  }

  std::vector<bool> run_batch(const jobs::Batch& batch, h5md::File& file, Progress& progress) override {
    torch::Tensor seeds;
    std::vector<bool> valid;
    auto out = jobs::generate_batch(
        *domain_, *model_, batch,
        [&](int64_t k) {  // the same string as `dit protein sample --ss library` gives sample k
          const auto L = length(k);
          return ProteinRequest{
              L, library_ ? library_->sample(L, mix_seed(mix_seed(sampling_.seed, static_cast<uint64_t>(k)), 1))
                          : std::string()};
        },
        sampling_, progress, seeds, valid);
    append_backbones(file, max_length_, out, seeds);
    return valid;
  }

 private:
  std::vector<int64_t> lengths_;
  int64_t max_length_ = 0;
  bool relax_ = true, ss_library_ = false;
  std::unique_ptr<SecondaryStructureLibrary> library_;
  std::string model_path_;
  TokenDiT model_{nullptr};
  std::unique_ptr<ProteinDomain> domain_;
  FlowSampling sampling_;
};

}  // namespace

DIT_REGISTER_BATCH_DOMAIN("protein", ProteinBatchDomain);

}  // namespace dit::protein
