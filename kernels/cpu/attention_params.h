#pragma once
// Plain parameters of the fused CPU attention forward (FlashAttention-style params struct).
// No torch headers: the ISA-specific translation units (attention_avx512.cpp,
// attention_avx2.cpp, attention_scalar.cpp) are compiled with their own -m flags and must not
// instantiate library templates that the linker could share with portable code.
#include <cstdint>

namespace dit::kernels::cpu {

// Fixed shape of one ISA's code. The tile sizes themselves (query rows per task, keys per
// online-softmax step) are run-time parameters, chosen by the autotuner (attention.cpp).
struct AttentionTraits {
  int width;  // floats per SIMD register: query tiles are a multiple of it (queries in lanes)
};

// One call covers tasks [task_begin, task_end) of the grid (batch, head, query tile).
struct AttentionParams {
  // q: element (b, h, i, d) at q + b*q_stride[0] + h*q_stride[1] + i*q_stride[2] + d*q_stride[3];
  // the same for k, v (key j) and o. Any strides: K and V are read in place.
  const float* q;
  const float* k;
  const float* v;
  float* o;
  int64_t q_stride[4], k_stride[4], v_stride[4], o_stride[4];
  int64_t B, H, Nq, D;
  // Kept keys of batch element b, in order: key_index[b * key_index_stride + j] for
  // j < nk[b]; null: every key (nk[b] = Nk). nk[b] = 0: every key masked -> output 0.
  const int64_t* key_index;
  int64_t key_index_stride;
  const int64_t* nk;
  float scale;        // softmax scale, folded into q when it is transposed into the tile
  int64_t q_tile;     // query rows per task (multiple of the width)
  int64_t key_tile;   // keys per online-softmax step (Bc)
};

// Floats of scratch one thread needs for these tiles (the caller allocates it, 8-byte aligned).
int64_t attention_scratch_floats(int64_t q_tile, int64_t key_tile, int64_t D);

AttentionTraits attention_traits_avx512();
AttentionTraits attention_traits_avx2();
AttentionTraits attention_traits_scalar();
void attention_forward_avx512(const AttentionParams& p, int64_t task_begin, int64_t task_end,
                              float* scratch);
void attention_forward_avx2(const AttentionParams& p, int64_t task_begin, int64_t task_end,
                            float* scratch);
void attention_forward_scalar(const AttentionParams& p, int64_t task_begin, int64_t task_end,
                              float* scratch);

}  // namespace dit::kernels::cpu
