#pragma once
// Internal to the kernels part (and seen by its tests and dit-bench, which measure backends one
// by one): the backends' own entry points behind the dispatcher of include/dit/kernels.h, and
// the autotuner's search. Library users call dit::kernels::attention etc. and select backends
// by name (set_backend / ScopedBackend / DIT_KERNELS).
#include <dit/kernels.h>

#include <string>
#include <vector>

namespace dit::kernels {

struct TuneCandidate {
  std::string name;  // e.g. "key_tile=64"
  double ms = 0;     // best of its timed calls
};
struct TuneReport {
  std::string key;                        // cache key: device, kernel, parameter, shape bucket
  std::string chosen;                     // the winning candidate's name
  std::vector<TuneCandidate> candidates;  // empty when the choice came from the cache
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

// Tile sizes of the cpu attention: query rows per task and keys per online-softmax step.
struct AttentionTiles {
  int64_t q_tile = 0;
  int64_t key_tile = 0;
};
// The tiles cpu::attention uses for these inputs: from the cache, or searched now, when
// autotuning is on; else the defaults (key tile 64; query tiles of 64 rows, halved while there
// are fewer than 4 tasks per thread).
AttentionTiles attention_tiles(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const AttentionOptions& opts = {},
                               const std::string& isa = "");
// Runs the search for these inputs now, whether or not autotuning is on (force: also when the
// cache has an answer, which is then replaced), and reports each decision: the key tile, then
// the query tile.
std::vector<TuneReport> tune_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const AttentionOptions& opts,
                                       const std::string& isa, bool force);
}  // namespace cpu

}  // namespace dit::kernels
