// Starting poses from the docking network: samples of the ligand's heavy-atom coordinates in
// the pocket drawn through the one sampling path (dit::sample_flow: the sampler registry), with
// the score's gradient as the domain's guidance hook, projected onto the ligand's own geometry
// (see proposal_model.h).
#include "domains/docking/proposal_model.h"

#include <dit/error.h>
#include <dit/flow.h>
#include <dit/inference.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <dit/train.h>
#include <fmt/format.h>

#include <map>
#include <mutex>

#include "domains/docking/model.h"
#include "domains/docking/optimize.h"

namespace dit::docking {

namespace {

// Models are read once per process (a screening run docks thousands of ligands with one) and
// placed (device, precision) under the same lock, only when the placement changes: screening
// threads sample from one model at the same time, and moving its weights then would race.
DockingModel cached_model(const std::string& path, const Placement& placement) {
  static std::mutex mutex;
  static std::map<std::string, std::pair<DockingModel, std::string>> models;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = models.find(path);
  if (it == models.end()) it = models.emplace(path, std::make_pair(load_docking_model(path), std::string())).first;
  const std::string key = placement.device + "/" + placement.dtype;
  if (it->second.second != key) {
    place_for_sampling(*it->second.first.net, placement);
    it->second.second = key;
  }
  return it->second.first;
}

Quaternion quaternion_from_matrix(const double m[3][3]) {
  Quaternion q;
  const double trace = m[0][0] + m[1][1] + m[2][2];
  if (trace > 0) {
    const double s = 0.5 / std::sqrt(trace + 1.0);
    q = {0.25 / s, (m[2][1] - m[1][2]) * s, (m[0][2] - m[2][0]) * s, (m[1][0] - m[0][1]) * s};
  } else if (m[0][0] > m[1][1] && m[0][0] > m[2][2]) {
    const double s = 2.0 * std::sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]);
    q = {(m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s};
  } else if (m[1][1] > m[2][2]) {
    const double s = 2.0 * std::sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]);
    q = {(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s};
  } else {
    const double s = 2.0 * std::sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]);
    q = {(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s};
  }
  q.normalize();
  return q;
}

}  // namespace

// The pose of the ligand's own geometry closest to `target` (heavy atoms, heavy order): Kabsch
// for the rigid part (Kabsch 1976), then L-BFGS over rigid body + torsions on the squared
// distance.
Pose fit_pose(const LigandTopology& topology, const std::vector<Vec3>& target) {
  const size_t H = topology.heavy.size();
  Vec3 mean{0, 0, 0};
  for (const auto& y : target)
    for (int k = 0; k < 3; ++k) mean[k] += y[k] / H;
  auto cov = torch::zeros({3, 3}, torch::kFloat64);
  auto c = cov.accessor<double, 2>();
  for (size_t i = 0; i < H; ++i) {
    const auto& r = topology.reference[topology.heavy[i]];
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) c[a][b] += (r[a] - topology.centroid[a]) * (target[i][b] - mean[b]);
  }
  auto [u, s, vh] = torch::linalg_svd(cov, false);
  auto v = vh.transpose(0, 1);
  auto d = torch::det(torch::matmul(v, u.transpose(0, 1))).item<double>() < 0 ? -1.0 : 1.0;
  auto diag = torch::diag(torch::tensor({1.0, 1.0, d}, torch::kFloat64));
  auto rot = torch::matmul(torch::matmul(v, diag), u.transpose(0, 1));
  double m[3][3];
  auto ra = rot.accessor<double, 2>();
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) m[a][b] = ra[a][b];
  Pose start = topology.identity_pose();
  start.position = mean;
  start.orientation = quaternion_from_matrix(m);
  const PoseObjective distance = [&](const Pose& pose, PoseGradient* gradient) {
    const auto x = topology.coordinates(pose);
    std::vector<Vec3> g(x.size(), Vec3{0, 0, 0});
    double sum = 0;
    for (size_t i = 0; i < H; ++i) {
      const int a = topology.heavy[i];
      for (int k = 0; k < 3; ++k) {
        const double diff = x[a][k] - target[i][k];
        sum += diff * diff;
        g[a][k] = 2 * diff;
      }
    }
    if (gradient) *gradient = topology.pose_gradient(pose, x, g);
    return sum;
  };
  return minimize_pose(distance, start, 300).pose;
}

FlowInputs DockingDomain::encode(const std::vector<DockingRequest>& requests) const {
  const auto B = static_cast<int64_t>(requests.size());
  int64_t L = 0, P = 0;
  for (const auto& r : requests) {
    if (!r.complex || !r.complex->topology) throw Error("docking domain: a request without its complex");
    L = std::max(L, r.complex->ligand.size(0));
    P = std::max(P, r.complex->pocket.size(0));
  }
  FlowInputs in;
  in.features = torch::zeros({B, L, kLigandFeatures});  // [B, L, F]
  in.mask = torch::zeros({B, L}, torch::kBool);
  in.context = torch::zeros({B, P, kPocketFeatures + 3});  // [B, P, Fc]
  in.context_mask = torch::zeros({B, P}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const auto& c = *requests[static_cast<size_t>(b)].complex;
    const int64_t l = c.ligand.size(0), p = c.pocket.size(0);
    in.features[b].narrow(0, 0, l).copy_(c.ligand);
    in.mask[b].narrow(0, 0, l).fill_(true);
    in.context[b].narrow(0, 0, p).copy_(c.pocket);
    in.context_mask[b].narrow(0, 0, p).fill_(true);
  }
  return in;
}

// Score guidance on the predicted clean pose x0 = x - t v: each ligand atom is pushed down the
// gradient of its complex's intermolecular score (kcal/mol per scaled unit), the push clipped to
// norm 1 per atom and scaled by the guidance strength.
VelocityFn DockingDomain::guide_requests(VelocityFn velocity, const FlowInputs& inputs,
                                         const std::vector<DockingRequest>& requests) const {
  if (guidance_ <= 0) return velocity;
  auto rows = inputs.rows.contiguous();
  return [this, velocity = std::move(velocity), rows, &requests](const torch::Tensor& x, const torch::Tensor& t) {
    auto v = velocity(x, t);                                  // [B', L, 3]
    auto x0 = (x - t.view({-1, 1, 1}) * v).contiguous();      // [B', L, 3]
    auto push = torch::zeros_like(v);
    auto xa = x0.accessor<float, 3>();
    auto pa = push.accessor<float, 3>();
    auto ra = rows.accessor<int64_t, 1>();
    for (int64_t b = 0; b < x0.size(0); ++b) {
      const auto& c = *requests[static_cast<size_t>(ra[b])].complex;
      if (!c.grid) continue;
      const auto& heavy_type = c.topology->heavy_type;
      for (int64_t i = 0; i < c.ligand.size(0); ++i) {
        Vec3 p, g{0, 0, 0};
        for (int k = 0; k < 3; ++k) p[k] = c.box.center[k] + kCoordScale * xa[b][i][k];
        c.grid->energy(heavy_type[static_cast<size_t>(i)], p, &g);
        double norm = 0;
        for (int k = 0; k < 3; ++k) norm += g[k] * g[k] * kCoordScale * kCoordScale;
        const double clip = norm > 1 ? 1 / std::sqrt(norm) : 1.0;
        for (int k = 0; k < 3; ++k) pa[b][i][k] = static_cast<float>(guidance_ * clip * g[k] * kCoordScale);
      }
    }
    return v + push;
  };
}

std::vector<Pose> DockingDomain::decode(const torch::Tensor& x0, const FlowInputs&,
                                        const std::vector<DockingRequest>& requests) const {
  auto x = x0.contiguous();
  auto xa = x.accessor<float, 3>();
  std::vector<Pose> poses;
  for (size_t b = 0; b < requests.size(); ++b) {
    const auto& c = *requests[b].complex;
    std::vector<Vec3> target(static_cast<size_t>(c.ligand.size(0)));
    for (size_t i = 0; i < target.size(); ++i)
      for (int k = 0; k < 3; ++k)
        target[i][k] = c.box.center[k] + kCoordScale * xa[static_cast<int64_t>(b)][static_cast<int64_t>(i)][k];
    poses.push_back(fit_pose(*c.topology, target));
  }
  return poses;
}

namespace {
const bool registered_docking_proposal_model = register_domain(
    "docking", "ligand heavy atoms in a protein pocket (TokenDiT, pocket atoms as context): starting poses "
    "for the physics search of `dit dock`",
    [] { return std::make_unique<DockingDomain>(); });
}  // namespace

namespace {
// The complex as the model sees it (grid: the guidance's score; null for none).
std::shared_ptr<DockingComplex> make_complex(const LigandTopology& topology, const RDKit::ROMol& ligand,
                                             const Receptor& pocket, const ReceptorGrid* grid,
                                             const Box& box, const DockingModel& model) {
  auto complex = std::make_shared<DockingComplex>();
  complex->topology = &topology;
  complex->grid = grid;
  complex->box = box;
  complex->ligand = ligand_features(ligand, topology);                     // [L, F]
  complex->pocket = pocket_tokens(pocket, box, model.max_pocket_atoms);    // [P, Fc]
  return complex;
}
}  // namespace

std::vector<Pose> model_starts(const LigandTopology& topology, const RDKit::ROMol& ligand,
                               const Receptor& pocket, const ReceptorGrid& grid, const Box& box,
                               int count, const ProposalSettings& settings) {
  torch::NoGradGuard no_grad;
  auto model = cached_model(settings.model_path, Placement{settings.device, settings.precision});
  const auto complex = make_complex(topology, ligand, pocket, &grid, box, model);
  const std::vector<DockingRequest> requests(static_cast<size_t>(count), DockingRequest{complex});
  FlowSampling sampling;
  sampling.sampler = settings.sampler;
  sampling.options.steps = settings.steps;
  sampling.seed = settings.seed;
  sampling.chunk = count;
  Progress silent;
  auto samples = generate(DockingDomain(settings.guidance), *model.net, requests, sampling, silent);
  std::vector<Pose> starts;
  for (auto& s : samples) {
    if (!s.finite)
      throw Error(fmt::format("{}: the docking model produced non-finite coordinates", settings.model_path));
    starts.push_back(std::move(s.structure));
  }
  return starts;
}

std::vector<double> model_pose_losses(const LigandTopology& topology, const RDKit::ROMol& ligand,
                                      const Receptor& pocket, const Box& box,
                                      const std::vector<std::vector<Vec3>>& poses,
                                      const ProposalSettings& settings, int draws) {
  if (draws < 1) throw Error(fmt::format("docking model score: draws must be >= 1, got {}", draws));
  if (poses.empty()) return {};
  torch::NoGradGuard no_grad;
  auto model = cached_model(settings.model_path, Placement{settings.device, settings.precision});
  const auto complex = make_complex(topology, ligand, pocket, nullptr, box, model);
  const int64_t C = static_cast<int64_t>(poses.size()), K = draws;
  const int64_t L = complex->ligand.size(0);
  std::vector<torch::Tensor> states;  // the candidates in the model's frame
  for (const auto& atoms : poses) states.push_back(ligand_state(topology, atoms, box));
  const auto x = torch::stack(states);  // [C, L, 3]
  // Rows: draw-major, [K x C], encoded as the sampling path encodes them; every candidate sees
  // the same rotation (of its pocket and itself), time and noise.
  auto in = DockingDomain(0).encode(std::vector<DockingRequest>(static_cast<size_t>(K * C), DockingRequest{complex}));
  const auto& context = complex->pocket;
  auto gen = sample_generator(settings.seed ^ 0x4d4c4f5353ULL, 0);
  auto x0 = torch::empty({K * C, L, 3});
  auto eps = torch::empty({K * C, L, 3});
  auto t = torch::empty({K * C});
  for (int64_t k = 0; k < K; ++k) {
    auto rot = random_rotation(gen);                                          // [3, 3]
    auto e = at::randn({L, 3}, gen, torch::TensorOptions().dtype(torch::kFloat32));
    const auto turned = torch::matmul(context.narrow(1, kPocketFeatures, 3), rot.t());  // [P, 3]
    in.context.narrow(0, k * C, C).narrow(2, kPocketFeatures, 3).copy_(turned.unsqueeze(0).expand({C, -1, 3}));
    const double tk = (static_cast<double>(k) + 0.5) / static_cast<double>(K);
    x0.narrow(0, k * C, C).copy_(torch::matmul(x, rot.t()));
    eps.narrow(0, k * C, C).copy_(e.unsqueeze(0).expand({C, L, 3}));
    t.narrow(0, k * C, C).fill_(tk);
  }
  // One batch (one shape for the inference path's buffers): K x C rows of one small ligand.
  const auto mean = flow_matching_loss(*model.net, in, x0, eps, t, /*chunk=*/K * C)
                        .view({K, C}).to(torch::kFloat64).mean(0).contiguous();
  return std::vector<double>(mean.data_ptr<double>(), mean.data_ptr<double>() + C);
}

}  // namespace dit::docking
