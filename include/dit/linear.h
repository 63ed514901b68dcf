#pragma once
// Linear layers with prepacked weights for the CPU inference path: y = act(x W^T + b) through a
// oneDNN matmul (brgemm kernels: AVX-512 for fp32, AVX512-BF16 for bf16 products where the CPU
// has it), weights reordered once into oneDNN's blocked layout, bias and the tanh-GELU fused into
// the GEMM's epilogue. Built where oneDNN (libdnnl-dev) was found: PackedLinear::available().
//
// Precision:
//   kFloat32  fp32 products and sums (the same function as torch::linear, summed in another
//             order: |diff| ~1e-6 relative).
//   kBF16     weights stored as bfloat16, activations rounded to bfloat16 before the product
//             (those given as float32 are converted inside run()), fp32 accumulation, output in
//             the dtype of `out` (float32, or bfloat16 to feed the next bf16 linear directly);
//             relative error per layer ~4e-3 (tests/kernels).
#include <torch/torch.h>

#include <memory>
#include <string>

namespace dit::kernels {

enum class LinearPrecision { kFloat32, kBF16 };
enum class LinearActivation { kNone, kGeluTanh };

// "fp32" / "bf16" (also "f32"; "" = fp32) -> precision; throws dit::Error naming `where` otherwise.
LinearPrecision parse_linear_precision(const std::string& name, const std::string& where);
const char* precision_name(LinearPrecision p);
// Whether this CPU multiplies bfloat16 natively (AVX512-BF16). Elsewhere bf16 is emulated, much
// slower than fp32; the commands then fall back to fp32 with a message (resolve_precision).
bool cpu_has_native_bf16();
// The precision to run: `requested`, or fp32 (with one line on stderr saying why) when bf16 is
// asked for on a CPU without AVX512-BF16.
LinearPrecision resolve_precision(LinearPrecision requested);

class PackedLinear {
 public:
  // weight [N, K] and bias [N] (float32, CPU). Throws dit::Error when !available().
  PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias, LinearPrecision precision,
               LinearActivation activation = LinearActivation::kNone);
  // x [M, K] with unit column stride (float32, or bfloat16 with kBF16) -> out [M, N] with unit
  // column stride (float32, or bfloat16 with kBF16). Thread-safe; primitives are cached per M.
  void run(const torch::Tensor& x, const torch::Tensor& out) const;
  LinearPrecision precision() const;
  static bool available();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace dit::kernels
