// The base objective: conditional flow matching with the rectified-flow path (Liu et al. 2023;
// Lipman et al. 2023, eq. 23 with sigma_min = 0): x_t = (1 - t) x0 + t eps, target v = eps - x0,
// loss E |v_theta(x_t, t, y) - (eps - x0)|^2; on periodic numbers (TrainBatch::periodic) the
// same path along the shortest arc of the circle (Riemannian flow matching on the flat torus,
// Chen & Lipman 2024; DiffCSP, Jiao et al. 2023).
#include <dit/flow.h>
#include <dit/train.h>

namespace dit {
namespace {

class FlowMatchingObjective final : public TrainingObjective {
 public:
  torch::Tensor loss(FlowMatchingTrainer& trainer, const TrainBatch& batch,
                     at::Generator& gen) override {
    auto& net = *trainer.net();
    const auto& opts = trainer.options();
    const auto& x0 = batch.x0;                             // [B, ...]
    auto eps = at::randn(x0.sizes(), gen, x0.options());   // [B, ...]
    if (batch.periodic.defined()) {
      // On the circle: uniform noise u, taken at its image nearest to x0, so that the straight
      // path x0 -> eps is the shortest arc and the target eps - x0 = wrap(u - x0).
      auto u = at::rand(x0.sizes(), gen, x0.options()) - 0.5;
      eps = torch::where(batch.periodic, x0 + wrap_periodic(u - x0), eps);
    }
    auto t = sample_times(opts, x0.size(0), gen);          // [B]
    auto inputs = batch.inputs;
    inputs.labels = drop_labels(net.num_classes(), opts, inputs.labels, gen);
    auto xt = flow_interpolate(x0, eps, t);
    if (batch.periodic.defined()) xt = torch::where(batch.periodic, wrap_periodic(xt), xt);
    auto out = net.flow(xt, t, inputs);
    return masked_mse(out, eps - x0, inputs.mask);
  }
};

const bool registered_flow_matching_objective = register_objective(
    "flow-matching", "rectified-flow matching of the velocity (the base model)",
    [](const TrainOptions&) { return std::make_unique<FlowMatchingObjective>(); });

}  // namespace
}  // namespace dit
