// The base objective: conditional flow matching with the rectified-flow path (Liu et al. 2023;
// Lipman et al. 2023, eq. 23 with sigma_min = 0): x_t = (1 - t) x0 + t eps, target v = eps - x0,
// loss E |v_theta(x_t, t, y) - (eps - x0)|^2.
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
    auto t = sample_times(opts, x0.size(0), gen);          // [B]
    auto inputs = batch.inputs;
    inputs.labels = drop_labels(net.num_classes(), opts, inputs.labels, gen);
    auto xt = flow_interpolate(x0, eps, t);
    auto out = net.flow(xt, t, inputs);
    return masked_mse(out, eps - x0, inputs.mask);
  }
};

const bool registered = register_objective(
    "flow-matching", "rectified-flow matching of the velocity (the base model)",
    [](const TrainOptions&) { return std::make_unique<FlowMatchingObjective>(); });

}  // namespace
}  // namespace dit
