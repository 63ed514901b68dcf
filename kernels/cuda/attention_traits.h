#pragma once
// The tile configurations of the CUDA attention forward: one table read by the kernel traits
// (attention_kernel.cuh), the dispatcher and the config names, so they cannot disagree.
// Plain C++ (no device code).

namespace dit::kernels::cuda {

struct AttentionTileConfig {
  int block_m;  // query rows per CTA
  int block_n;  // keys per tile of the online softmax
  int warps;    // each warp owns block_m / warps query rows (a multiple of 16: one mma row tile)
  const char* name;
};

// Head dims with kernels. 72 is computed at 72: k-steps 16,16,16,16,8 for q k^T and 9 n8 tiles
// for p v, never padded to 80 or 96.
inline constexpr int kAttentionHeadDims[] = {64, 72, 96, 128};

// Configurations per head dim, best guess first (the engine's autotuner times them all).
inline constexpr int kAttentionConfigCount = 3;
inline constexpr AttentionTileConfig kAttentionConfigsUpTo96[kAttentionConfigCount] = {
    // FlashAttention-2's sm80 choice: 32 rows per warp, so every K/V fragment read from shared
    // memory feeds two mma row tiles.
    {128, 64, 4, "q128_k64_w4"},
    // 16 rows per warp: about half the registers, twice the warps to hide latency.
    {128, 64, 8, "q128_k64_w8"},
    // Twice the CTAs, for short query sequences.
    {64, 64, 4, "q64_k64_w4"},
};
inline constexpr AttentionTileConfig kAttentionConfigs128[kAttentionConfigCount] = {
    // Key tiles of 32: 32 rows per warp with key tiles of 64 needs more than 255 registers at
    // head dim 128 (ptxas spills).
    {128, 32, 4, "q128_k32_w4"},
    {128, 64, 8, "q128_k64_w8"},
    {64, 64, 4, "q64_k64_w4"},
};

constexpr const AttentionTileConfig& attention_tile_config(int head_dim, int config) {
  return head_dim == 128 ? kAttentionConfigs128[config] : kAttentionConfigsUpTo96[config];
}

inline constexpr bool attention_head_dim_supported(int head_dim) {
  for (int d : kAttentionHeadDims)
    if (d == head_dim) return true;
  return false;
}

}  // namespace dit::kernels::cuda
