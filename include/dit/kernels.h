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
//   "cuda"       only in builds against a CUDA torch, with a GPU present (kernels/cuda):
//                flash-style attention forward on tensor cores for bf16/fp16 and head dims 64,
//                72, 96, 128, and adaLN LayerNorm+modulate / gate+residual for fp32, bf16,
//                fp16; inputs it does not take (e.g. fp32 attention) run the reference ops on
//                the GPU under "auto", and are an error when "cuda" is selected by name.
// The fast backends have NO backward: whenever autograd would need one (grad mode on and any
// input requires grad, i.e. training) the dispatcher uses the reference path, whatever backend
// is selected. Choice, in order: a ScopedBackend on the calling thread, set_backend(), the
// environment variable DIT_KERNELS (e.g. DIT_KERNELS=reference), else "auto" = the fastest
// backend that supports the inputs (cpu for CPU float32 tensors, cuda for CUDA tensors, else
// reference).
// The backends' own entry points (reference::, cpu::, the autotuner's search) are internal:
// kernels/backends.h, for the kernels, their tests and dit-bench.
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
// must be available on this CPU), and "cuda" in CUDA builds. Unknown or unavailable names throw
// dit::Error.
void set_backend(const std::string& name);  // process-wide; default $DIT_KERNELS or "auto"
std::string backend();                      // the selection in force on this thread
// Backends usable on this machine, each a valid argument of set_backend / ScopedBackend:
// "reference", then "cpu:<isa>" for every ISA the CPU supports (best first), then "cuda" when
// this build has it and a GPU is present.
std::vector<std::string> available_backends();

// ---- autotuning -----------------------------------------------------------------------------
// The fused kernels' tile sizes are picked per machine and shape by a short timed search the
// first time a shape is seen (a few ms for small shapes, up to ~2 s for the largest attention
// shapes; seed paper, section 5), and kept in a JSON file that later processes read instead of
// searching again. Shapes are bucketed (lengths and batch x heads to the next power of two).
// Only tile sizes are tuned: the cpu attention's key tile fixes the order of the softmax sums,
// so outputs can differ in the last bits between machines whose searches chose differently;
// it is keyed by (ISA, head dim, key length) alone, so within one machine every batch size
// gets the same bits. Switch off with set_autotune(false), DIT_AUTOTUNE=0 or the CLIs'
// --no-autotune: each kernel then uses fixed defaults.
void set_autotune(bool enabled);  // process-wide; default: $DIT_AUTOTUNE (0/off: off), else on
bool autotune_enabled();
// $DIT_AUTOTUNE_CACHE, else $XDG_CACHE_HOME/dit-engine/autotune.json, else
// $HOME/.cache/dit-engine/autotune.json ("" without a home: choices last one process).
std::string autotune_cache_path();

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

}  // namespace dit::kernels
