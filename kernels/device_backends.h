#pragma once
// Kernel backends for tensors on an accelerator, registered by their own file (the "cuda"
// backend: kernels/cuda/torch_bridge.cpp, compiled into libdit only against a CUDA build of
// torch). kernels/dispatch.cpp offers a registered backend by name and sends it the tensors of
// its device type; each op returns false / nullopt when it cannot take the inputs (dtype, head
// dim, strides), and the dispatcher then runs the reference ops on the same device, or, when the
// backend was selected by name, reports what it could not take.
#include <dit/kernels.h>

#include <optional>
#include <string>

namespace dit::kernels {

struct DeviceBackend {
  std::string name;          // "cuda": accepted by set_backend / ScopedBackend / DIT_KERNELS
  c10::DeviceType device{};  // the tensors it is sent
  bool (*available)() = nullptr;  // a device is present (available_backends() lists it then)
  // nullptr when attention(q, ...) would run these inputs, else why not (names the field).
  const char* (*attention_unsupported)(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v) = nullptr;
  // Result as kernels::attention (may be a permuted view of [B, Nq, H, Dh] memory).
  torch::Tensor (*attention)(const torch::Tensor& q, const torch::Tensor& k,
                             const torch::Tensor& v, const AttentionOptions& opts) = nullptr;
  // false (and nothing written) when the inputs are not ones it takes.
  bool (*adaln_layernorm_out)(const torch::Tensor& out, const torch::Tensor& x,
                              const torch::Tensor& shift, const torch::Tensor& scale) = nullptr;
  bool (*gate_residual_)(const torch::Tensor& x, const torch::Tensor& gate,
                         const torch::Tensor& y) = nullptr;
};

// Called once from a static initialiser in the backend's file; returns true (for that use).
bool register_device_backend(const DeviceBackend& backend);

// The layouts the fused adaLN ops of a device backend take (the cuda backend asks these; they are
// plain tensor metadata, so tests/kernels/layout_test.cpp checks on the CPU that the model passes
// what they take). nullptr when the inputs qualify, else a sentence naming the field:
//   adaln_layernorm_out: x and out [B, N, D] row-major contiguous, of one device and dtype (fp32,
//     bf16 or fp16); shift and scale [B, D] rows with unit stride along D (chunks of the adaLN
//     projection [B, 6D] qualify as they are).
//   gate_residual_: x [B, N, D] contiguous; y of x's shape (any strides: copied once when not
//     contiguous); gate a [B, D] row operand; one device and dtype.
const char* adaln_layout_unsupported(const torch::Tensor& out, const torch::Tensor& x,
                                     const torch::Tensor& shift, const torch::Tensor& scale);
const char* gate_residual_layout_unsupported(const torch::Tensor& x, const torch::Tensor& gate,
                                             const torch::Tensor& y);

}  // namespace dit::kernels
