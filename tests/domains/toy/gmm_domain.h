#pragma once
// A toy structure domain for the tests: sets of 2-D points (3 to 8 per set, a padding mask)
// drawn i.i.d. from a known Gaussian mixture chosen by the set's label. It is a whole domain in
// one folder: requests, structures, encode / decode, training data, one check and its
// registration; everything else (network, trainer, samplers, sampling path) is the engine's.
#include <dit/domain.h>
#include <dit/train.h>

#include <array>
#include <vector>

namespace dit_toy {

// The mixtures: label 0 and label 1 (label 1 is label 0 mirrored in y).
struct Mode {
  double x, y, sigma, weight;
};
inline std::array<Mode, 3> modes(int64_t label) {
  const double s = label == 0 ? 1.0 : -1.0;
  return {Mode{-2.0, 0.0 * s, 0.35, 0.5}, Mode{2.0, 0.5 * s, 0.35, 0.3}, Mode{0.0, 2.5 * s, 0.35, 0.2}};
}
constexpr int64_t kMinPoints = 3, kMaxPoints = 8;

struct CloudRequest {
  int64_t points = 5;
  int64_t label = 0;
};
struct PointCloud {
  torch::Tensor points;  // [n, 2]
  int64_t label = 0;
};

// Draws `n` points of the label's mixture [n, 2] from `gen`.
inline torch::Tensor draw_points(int64_t n, int64_t label, at::Generator& gen) {
  auto m = modes(label);
  auto weights = torch::tensor({m[0].weight, m[1].weight, m[2].weight}, torch::kFloat64);
  auto which = at::multinomial(weights, n, /*replacement=*/true, gen);
  auto noise = at::randn({n, 2}, gen, torch::TensorOptions().dtype(torch::kFloat32));
  auto out = torch::empty({n, 2});
  for (int64_t i = 0; i < n; ++i) {
    const auto& mode = m[which[i].item<int64_t>()];
    out[i][0] = mode.x + mode.sigma * noise[i][0].item<float>();
    out[i][1] = mode.y + mode.sigma * noise[i][1].item<float>();
  }
  return out;
}

class GmmDomain final : public dit::StructureDomain<CloudRequest, PointCloud> {
 public:
  std::string name() const override { return "gmm"; }
  int64_t state_dim() const override { return 2; }
  dit::FlowInputs encode(const std::vector<CloudRequest>& requests) const override {
    const auto B = static_cast<int64_t>(requests.size());
    int64_t N = 0;
    for (const auto& r : requests) N = std::max(N, r.points);
    dit::FlowInputs in;
    in.mask = torch::zeros({B, N}, torch::kBool);
    in.labels = torch::empty({B}, torch::kLong);
    for (int64_t i = 0; i < B; ++i) {
      in.mask[i].narrow(0, 0, requests[i].points).fill_(true);
      in.labels[i] = requests[i].label;
    }
    return in;
  }
  std::vector<PointCloud> decode(const torch::Tensor& x0, const dit::FlowInputs&,
                                 const std::vector<CloudRequest>& requests) const override {
    std::vector<PointCloud> out;
    for (size_t i = 0; i < requests.size(); ++i)
      out.push_back({x0[static_cast<int64_t>(i)].narrow(0, 0, requests[i].points).clone(), requests[i].label});
    return out;
  }
};

// Training sets: `count` clouds with random sizes and labels, drawn once from `seed`.
class GmmData final : public dit::TrainingData {
 public:
  GmmData(int64_t count, uint64_t seed) {
    auto gen = dit::sample_generator(seed, 0);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t n = at::randint(kMinPoints, kMaxPoints + 1, {1}, gen, torch::kLong).item<int64_t>();
      const int64_t label = i % 2;
      clouds_.push_back({draw_points(n, label, gen), label});
    }
  }
  int64_t size() const override { return static_cast<int64_t>(clouds_.size()); }
  dit::TrainBatch get(const torch::Tensor& index, at::Generator&) const override {
    const int64_t B = index.size(0);
    dit::TrainBatch b;
    b.x0 = torch::zeros({B, kMaxPoints, 2});
    b.inputs.mask = torch::zeros({B, kMaxPoints}, torch::kBool);
    b.inputs.labels = torch::empty({B}, torch::kLong);
    for (int64_t i = 0; i < B; ++i) {
      const auto& c = clouds_[index[i].item<int64_t>()];
      const int64_t n = c.points.size(0);
      b.x0[i].narrow(0, 0, n).copy_(c.points);
      b.inputs.mask[i].narrow(0, 0, n).fill_(true);
      b.inputs.labels[i] = c.label;
    }
    return b;
  }

 private:
  std::vector<PointCloud> clouds_;
};

}  // namespace dit_toy
