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
  int width;       // floats per SIMD register; key tiles are a multiple of it
  int row_block;   // query rows per register block (R); q tiles are a multiple of it
};

// One call covers tasks [task_begin, task_end) of the grid (batch, head, query tile).
struct AttentionParams {
  // q: element (b, h, i, d) at q + b*q_stride[0] + h*q_stride[1] + i*q_stride[2] + d*q_stride[3];
  // the same for o.
  const float* q;
  float* o;
  int64_t q_stride[4];
  int64_t o_stride[4];
  int64_t B, H, Nq, D;
  // Packed keys and values of each (b, h), only the keys that the mask keeps, in order:
  //   kt: [B*H][D][nk_pad] (keys transposed), zero beyond the kept count
  //   vp: [B*H][nk_pad][d_pad], zero beyond the kept count and beyond D
  // nk_pad is a multiple of the vector width (any key tile may be used with it).
  const float* kt;
  const float* vp;
  int64_t nk_pad, d_pad;
  const int64_t* nk;  // [B] kept keys per batch element (0: every key masked -> output 0)
  float scale;        // softmax scale, folded into q when packing
  int64_t q_tile;     // query rows per task (multiple of the row block)
  int64_t key_tile;   // keys per online-softmax step (Bc, multiple of the vector width)
};

// Floats of scratch one thread needs for these tiles (the caller allocates it).
int64_t attention_scratch_floats(int64_t q_tile, int64_t key_tile, int64_t D, int64_t d_pad);

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
