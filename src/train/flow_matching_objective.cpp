// The base objective: conditional flow matching with the rectified-flow path (Liu et al. 2023;
// Lipman et al. 2023, eq. 23 with sigma_min = 0): x_t = (1 - t) x0 + t eps, target v = eps - x0,
// loss E |v_theta(x_t, t, y) - (eps - x0)|^2.
#include <dit/flow.h>
#include <dit/train.h>

namespace dit {
namespace {

class FlowMatchingObjective final : public TrainingObjective {
 public:
  torch::Tensor loss(FlowMatchingTrainer& trainer, const torch::Tensor& x0, torch::Tensor y,
                     at::Generator& gen) override {
    auto& model = trainer.model();
    const auto& opts = trainer.options();
    auto eps = at::randn(x0.sizes(), gen, x0.options());  // [B, C, H, W]
    auto t = sample_times(opts, x0.size(0), gen);          // [B]
    y = drop_labels(model->config(), opts, std::move(y), gen);
    auto xt = flow_interpolate(x0, eps, t);
    auto out = model->forward(xt, t * kTimestepScale, y).narrow(1, 0, x0.size(1));
    return torch::mse_loss(out, eps - x0);
  }
};

const bool registered = register_objective(
    "flow-matching", "rectified-flow matching of the velocity (the base model)",
    [](const TrainOptions&) { return std::make_unique<FlowMatchingObjective>(); });

}  // namespace
}  // namespace dit
