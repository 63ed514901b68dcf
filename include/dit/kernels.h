#pragma once
// Kernels behind the DiT blocks. Each op has a reference implementation in plain libtorch ops
// (kernels/reference) and backends chosen by kernels/dispatch.cpp from device, dtype and
// head dimension. Every backend is tested against the reference (tests/kernels).
//
// Backends:
//   "reference"  plain libtorch ops; the only one with a backward pass.
//   "cpu"        fused fp32 kernels (kernels/cpu): flash-style attention (online softmax over
//                key tiles, never the N x N matrix) and one-pass LayerNorm + modulate, with
//                AVX-512, AVX2+FMA or portable scalar code chosen at run time ("cpu:avx512",
//                "cpu:avx2", "cpu:scalar" name one ISA).
// The CPU backend has NO backward: whenever autograd would need one (grad mode on and any
// input requires grad, i.e. training) the dispatcher uses the reference path, whatever backend
// is selected. Choice, in order: a ScopedBackend on the calling thread, set_backend(), the
// environment variable DIT_KERNELS (e.g. DIT_KERNELS=reference), else "auto" = the fastest
// backend that supports the inputs (cpu for CPU float32 tensors, else reference).
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace dit::kernels {

struct AttentionOptions {
  // Key-padding mask [B, Nk], true where the key is a real token. Queries at padded positions
  // still get a (meaningless but finite) output; callers mask them afterwards.
  std::optional<torch::Tensor> key_mask;
  // Softmax scale; default 1/sqrt(head_dim).
  std::optional<double> scale;
};

// softmax(q k^T * scale + mask) v for q [B, H, Nq, Dh], k and v [B, H, Nk, Dh] -> [B, H, Nq, Dh].
// Inputs may have any strides (e.g. views into a qkv projection). The result may be a
// non-contiguous view: the cpu backend returns [B, Nq, H, Dh] memory permuted to [B, H, Nq, Dh],
// so out.transpose(1, 2).reshape({B, Nq, H * Dh}) is free. A query whose keys are all masked
// gets 0 from the cpu backend (NaN from the reference).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts = {});

// LayerNorm without affine (eps 1e-6) followed by adaLN modulation:
//   LN(x) * (1 + scale) + shift, x [B, N, D], shift and scale [B, D].
torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale);

// x + gate[:, None, :] * y for x, y [B, N, D], gate [B, D] (adaLN-Zero gated residual).
torch::Tensor gate_residual(const torch::Tensor& x, const torch::Tensor& gate,
                            const torch::Tensor& y);

// Forms for the inference path (no autograd; buffers owned by the caller):
//   adaln_layernorm_out writes LN(x)(1 + scale) + shift into `out` (contiguous, shaped like x);
//   gate_residual_ updates x in place: x += gate[:, None, :] * y (x contiguous).
void adaln_layernorm_out(const torch::Tensor& out, const torch::Tensor& x,
                         const torch::Tensor& shift, const torch::Tensor& scale);
void gate_residual_(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y);

// Name of the backend the dispatcher picks for these inputs ("reference", "cpu:avx512", ...).
std::string attention_backend(const torch::Tensor& q);

// ---- backend selection ----------------------------------------------------------------------
// Names accepted: "auto", "reference", "cpu", "cpu:avx512", "cpu:avx2", "cpu:scalar" (an ISA
// must be available on this CPU). Unknown or unavailable names throw dit::Error.
void set_backend(const std::string& name);  // process-wide; default $DIT_KERNELS or "auto"
std::string backend();                      // the selection in force on this thread
// Backends usable on this machine, each a valid argument of set_backend / ScopedBackend:
// "reference", then "cpu:<isa>" for every ISA the CPU supports (best first).
std::vector<std::string> available_backends();

// Selects a backend on the calling thread for the lifetime of the object (nests).
class ScopedBackend {
 public:
  explicit ScopedBackend(const std::string& name);
  ~ScopedBackend();
  ScopedBackend(const ScopedBackend&) = delete;
  ScopedBackend& operator=(const ScopedBackend&) = delete;

 private:
  std::optional<std::string> previous_;
};

namespace reference {
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts);
torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale);
torch::Tensor gate_residual(const torch::Tensor& x, const torch::Tensor& gate,
                            const torch::Tensor& y);
}  // namespace reference

// The fused CPU kernels (CPU float32 only; no autograd). `isa` empty: the best available.
namespace cpu {
std::vector<std::string> isas();  // ISAs this CPU and build support, best first
std::string best_isa();
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& opts, const std::string& isa = "");
torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale);
torch::Tensor gate_residual(const torch::Tensor& x, const torch::Tensor& gate,
                            const torch::Tensor& y);
void adaln_layernorm_out(const torch::Tensor& out, const torch::Tensor& x,
                         const torch::Tensor& shift, const torch::Tensor& scale);
void gate_residual_(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y);
}  // namespace cpu

}  // namespace dit::kernels
