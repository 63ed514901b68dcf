#pragma once
// The inference path of a DiT for sampling: the same function as DiT::forward, run without
// autograd, with the activations of every block in buffers that are allocated once per
// (batch, tokens) and reused by all blocks and by every later call of the same shape (each step
// of a sampler), residual updates in place, and the fused kernels' out= / in-place forms
// (kernels::adaln_layernorm_out, kernels::gate_residual_). Used by dit_velocity whenever grad
// mode is off. One DiTInference serves one caller at a time (a mutex serialises calls).
#include <dit/linear.h>
#include <dit/model.h>

#include <memory>
#include <string>

namespace dit {

// Precision of the linear layers on the inference path (dit/linear.h). kFloat32: fp32 products.
// kBF16: weights rounded to bfloat16 once (when the DiTInference is made: make a new one after
// changing the weights), activations rounded to bfloat16 before each linear, fp32 accumulation;
// LayerNorm, attention and the residual stream stay float32. Relative error per linear ~4e-3;
// image quality against fp32: docs/performance.md. With oneDNN (the default build) the linears
// run as kernels::PackedLinear (prepacked weights, bias and tanh-GELU fused, fc1 writing bf16
// straight into fc2's input); without it, torch::linear.
using LinearPrecision = kernels::LinearPrecision;
using kernels::parse_linear_precision;

// The precision the sampling commands use by default: $DIT_LINEAR_PRECISION (fp32 / bf16), else
// fp32. A command's --precision overrides it (FlowSampling::precision).
LinearPrecision default_linear_precision();

// Where, and in what precision, a sampling command runs its network: --device and --dtype
// (--precision is the older name of --dtype) of dit image sample, dit dock, dit protein sample,
// dit crystal sample, and the `device` / `dtype` keys of batch job files.
struct Placement {
  std::string device = "cpu";  // cpu, cuda, cuda:N or auto (dit/runtime.h resolve_device)
  std::string dtype;           // fp32, bf16 or fp16; "" = $DIT_LINEAR_PRECISION, else fp32
};

// Puts `net` where `placement` says, for sampling (sample_flow then runs the whole loop there:
// noise, CFG batch and sampler state on that device, samples returned on the CPU). On a GPU
// the weights become `dtype` (the fused CUDA kernels take bf16 and fp16; fp32 runs libtorch's
// ops). On the CPU the weights stay float32 and bf16 selects the bf16 linear layers
// (inference_precision: fp32 with a one-line message on CPUs without AVX512-BF16); fp16 on the
// CPU is an error. Errors are dit::Error naming `flag_device` / `flag_dtype`. Returns what was
// chosen, e.g. "cuda:0 bf16" or "cpu fp32 (linears bf16)".
std::string place_for_sampling(FlowNetImpl& net, const Placement& placement,
                               const std::string& flag_device = "--device",
                               const std::string& flag_dtype = "--dtype");

// The block stack of either front-end (DiT over image patches, TokenDiT over token sets) run
// for sampling: the same function as calling each DiTBlock's forward in turn, without autograd,
// with the activations in buffers allocated once per (batch, tokens) and reused by every block
// and every later call of that shape, residual updates in place, the fused kernels' out= and
// in-place forms, and the linear layers in `precision` (dit/linear.h). One caller at a time (a
// mutex serialises calls).
class BlockStackInference {
 public:
  BlockStackInference(torch::nn::ModuleList blocks, int64_t num_heads, LinearPrecision precision);
  // tokens [B, N, D], c [B, D], key_mask [B, N] (true = real token) -> the tokens after every
  // block: a workspace buffer that the next call overwrites (use it before calling again).
  torch::Tensor run(const torch::Tensor& tokens, const torch::Tensor& c,
                    const std::optional<torch::Tensor>& key_mask = std::nullopt);
  // Buffer allocations so far (each a change of (batch, tokens, dtype)): for tests and benches.
  int64_t allocations() const;
  LinearPrecision precision() const { return precision_; }
  struct Linears;    // internal (src/model/inference.cpp)
  struct Workspace;  // internal

 private:
  torch::nn::ModuleList blocks_;
  int64_t heads_;
  LinearPrecision precision_;
  std::shared_ptr<Linears> linears_;  // prepacked or bf16 weights; null: torch::linear in fp32
  std::shared_ptr<Workspace> ws_;
};

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
  int64_t allocations() const { return stack_.allocations(); }
  const DiT& model() const { return model_; }
  LinearPrecision precision() const { return stack_.precision(); }

 private:
  DiT model_;
  BlockStackInference stack_;
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
