#pragma once
// The inference path of a DiT for sampling: the same function as DiT::forward, run without
// autograd, with the activations of every block in buffers that are allocated once per
// (batch, tokens) and reused by all blocks and by every later call of the same shape (each step
// of a sampler), residual updates in place, and the fused kernels' out= / in-place forms
// (kernels::adaln_layernorm_out, kernels::gate_residual_). Used by dit_velocity whenever grad
// mode is off. One DiTInference serves one caller at a time (a mutex serialises calls).
#include <dit/model.h>

#include <memory>
#include <string>

namespace dit {

// Precision of the linear layers on the inference path. kBF16: weights cast to bfloat16 once
// (when the DiTInference is made: make a new one after changing the weights), activations cast
// to bfloat16 before each linear, products accumulated by libtorch's oneDNN bf16 gemm (AVX512-BF16
// where the CPU has it) and written back as float32; LayerNorm, attention, GELU and the residual
// stream stay float32. About 2x faster linears on such CPUs (docs/performance.md); relative error
// of each linear ~4e-3. Image quality against fp32 is still to be checked with the eval table.
enum class LinearPrecision { kFloat32, kBF16 };

// "fp32" / "bf16" -> precision; throws dit::Error naming `where` otherwise.
LinearPrecision parse_linear_precision(const std::string& name, const std::string& where);

class DiTInference {
 public:
  explicit DiTInference(DiT model, LinearPrecision precision = LinearPrecision::kFloat32);
  // As DiT::forward: x [B, C, H, W], t [B] (timestep units), y [B] -> [B, out_channels, H, W].
  // The result is a fresh tensor (not a workspace buffer).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y,
                        const torch::Tensor& d = {});
  // Tokens in, tokens out, as DiT::run_blocks (key_mask [B, N], true = real token).
  torch::Tensor run_blocks(const torch::Tensor& tokens, const torch::Tensor& c,
                           const std::optional<torch::Tensor>& key_mask = std::nullopt);
  // Buffer allocations so far (each a change of (batch, tokens, dtype)): for tests and benches.
  int64_t allocations() const;
  const DiT& model() const { return model_; }

 private:
  struct Workspace;
  struct BF16Weights;
  DiT model_;
  std::shared_ptr<BF16Weights> bf16_;  // null for kFloat32
  std::shared_ptr<Workspace> ws_;
};

// One DiTInference::forward captured as a CUDA graph and replayed: at batch 1 a DiT forward is
// hundreds of small kernel launches, and one graph launch replaces them (a sampler step is then
// not launch-bound). Shapes, dtypes and the device are fixed at capture: forward() takes inputs
// shaped as the constructor's, copies them into the graph's own input tensors, replays, and
// returns the graph's output tensor, which the next call overwrites (clone it to keep it).
// Needs a build against a CUDA torch (the "cuda" kernel backend) and inputs on a GPU; otherwise
// the constructor throws dit::Error saying which. Capture runs the forward a few times first,
// so kernel autotuning and workspace allocation happen outside the graph.
class CudaGraphForward {
 public:
  CudaGraphForward(DiTInference& inference, const torch::Tensor& x, const torch::Tensor& t,
                   const torch::Tensor& y);
  ~CudaGraphForward();
  CudaGraphForward(const CudaGraphForward&) = delete;
  CudaGraphForward& operator=(const CudaGraphForward&) = delete;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& y);
  // Whether this build can capture CUDA graphs (it was built against a CUDA torch).
  static bool supported();

 private:
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

}  // namespace dit
