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

}  // namespace dit::kernels
