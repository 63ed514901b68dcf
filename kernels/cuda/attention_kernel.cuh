#pragma once
// Flash attention forward on mma.sync tensor cores (sm80+), bf16 or fp16 inputs, fp32
// accumulation and fp32 online softmax: the kernel and its tile traits. Launched by
// attention_launch_template.cuh; also compiled for the CPU by emulation/emulated_check.cpp.
//
// Algorithm: FlashAttention-2 (Dao 2023, Algorithm 1). One CTA = (query tile of kBlockM rows,
// head h, batch b); warp w owns kWarpRows consecutive rows of the tile. For each key tile j of
// kBlockN keys:
//   S = Q K_j^T * scale * log2(e)      [rows, kBlockN]  fp32 mma accumulators, never in memory
//   S[:, masked or out-of-range key] = -inf
//   m' = max(m, rowmax S); P = 2^(S - m'); l = l 2^(m - m') + rowsum P; O = O 2^(m - m')
//   O += P V_j                          (P rounded to the input dtype, the A operand of mma)
// and at the end out = O / l, or 0 where l = 0 (every key masked).
//
// Shared memory: Q [kBlockM][D], K and V [kBlockN][D], rows padded to an odd number of 16-byte
// chunks (D/8 | 1): the eight rows one ldmatrix phase reads then start in eight different
// 16-byte bank groups (conflict-free, no swizzle), and D = 72 (9 chunks) needs no padding.
// Pipeline (cp.async, one K and one V buffer): V_j loads while S = Q K_j^T and the softmax run,
// K_{j+1} loads while O += P V_j.
//
// Bounds: q rows >= Nq and key rows >= Nk are zero-filled in shared memory (cp.async with no
// source bytes), keys >= Nk get -inf scores, output rows >= Nq are not stored. Every global
// address formed lies inside the tensors the parameters describe.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "attention_params.h"
#include "attention_traits.h"
#ifdef DIT_CUDA_EMULATION
#include "emulation/sm80_emulated.h"  // the same instructions, run on the CPU (emulated_check)
#else
#include "sm80_ptx.cuh"
#endif

namespace dit::kernels::cuda {

template <int kHeadDim_, int kBlockM_, int kBlockN_, int kWarps_>
struct AttentionKernelTraits {
  static constexpr int kHeadDim = kHeadDim_;
  static constexpr int kBlockM = kBlockM_;
  static constexpr int kBlockN = kBlockN_;
  static constexpr int kWarps = kWarps_;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kWarpRows = kBlockM / kWarps;
  static constexpr int kMTiles = kWarpRows / 16;         // m16 row tiles per warp
  static constexpr int kSTiles = kBlockN / 8;            // n8 column tiles of S (keys)
  static constexpr int kQkSteps16 = kHeadDim / 16;       // k16 steps of Q K^T ...
  static constexpr bool kQkStep8 = kHeadDim % 16 == 8;   // ... then one k8 step (D = 72)
  static constexpr int kOTiles = kHeadDim / 8;           // n8 column tiles of O (9 for D = 72)
  static constexpr int kPvSteps = kBlockN / 16;          // k16 steps of P V (keys)
  static constexpr int kRowChunks = kHeadDim / 8;        // 16-byte chunks per row
  static constexpr int kSmemRowChunks = kRowChunks | 1;  // odd: conflict-free ldmatrix
  static constexpr int kSmemRowElems = 8 * kSmemRowChunks;
  static constexpr int kSmemQElems = kBlockM * kSmemRowElems;
  static constexpr int kSmemKvElems = kBlockN * kSmemRowElems;
  // Q, K, V (2-byte elements) and one keep flag per key of the tile.
  static constexpr int kSmemBytes = 2 * (kSmemQElems + 2 * kSmemKvElems) + kBlockN;

  static_assert(kHeadDim % 8 == 0 && kHeadDim <= 256, "head dim: whole 16-byte chunks");
  static_assert(kBlockM == kWarps * kWarpRows && kWarpRows % 16 == 0,
                "each warp owns whole m16 row tiles");
  static_assert(kBlockN % 32 == 0, "the k8 step reads keys 32 at a time; P V steps are k16");
  static_assert(kThreads >= kBlockN, "one thread per key writes the keep flags");
  static_assert(kSmemBytes <= 163 * 1024, "at most the shared memory of one CTA on sm80");
};

template <int kHeadDim, int kConfig>
using AttentionTraitsFor =
    AttentionKernelTraits<kHeadDim, attention_tile_config(kHeadDim, kConfig).block_m,
                          attention_tile_config(kHeadDim, kConfig).block_n,
                          attention_tile_config(kHeadDim, kConfig).warps>;

namespace attention_detail {

// The element type and its tensor-core instructions.
template <CudaDtype>
struct ElementOps;

template <>
struct ElementOps<CudaDtype::kBFloat16> {
  using type = __nv_bfloat16;
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x = lo: the low half
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
  }
  static __device__ __forceinline__ void mma_k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
    ptx::mma_m16n8k16_bf16(d, a, b0, b1);
  }
  static __device__ __forceinline__ void mma_k8(float (&d)[4], const uint32_t (&a)[2],
                                                uint32_t b0) {
    ptx::mma_m16n8k8_bf16(d, a, b0);
  }
};

template <>
struct ElementOps<CudaDtype::kFloat16> {
  using type = __half;
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);  // .x = lo: the low half
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
  }
  static __device__ __forceinline__ void mma_k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
    ptx::mma_m16n8k16_f16(d, a, b0, b1);
  }
  static __device__ __forceinline__ void mma_k8(float (&d)[4], const uint32_t (&a)[2],
                                                uint32_t b0) {
    ptx::mma_m16n8k8_f16(d, a, b0);
  }
};

// Rows [row0, row0 + kRows) of a [n_rows, D] matrix (row stride `stride` elements, unit stride
// along d) -> shared [kRows][kSmemRowElems]. Rows >= n_rows are zero-filled without reading.
template <class Traits, int kRows, class T>
__device__ __forceinline__ void copy_rows_async(T* smem, const T* gmem, int64_t stride, int row0,
                                                int n_rows, int tid) {
  constexpr int kChunks = kRows * Traits::kRowChunks;
  constexpr int kIters = (kChunks + Traits::kThreads - 1) / Traits::kThreads;
#pragma unroll
  for (int it = 0; it < kIters; ++it) {
    const int chunk = tid + it * Traits::kThreads;
    if (kChunks % Traits::kThreads == 0 || chunk < kChunks) {
      const int r = chunk / Traits::kRowChunks, c = chunk % Traits::kRowChunks;
      const bool valid = row0 + r < n_rows;
      const T* src = valid ? gmem + (row0 + r) * stride + c * 8 : gmem;
      ptx::cp_async_16(ptx::smem_address(smem + r * Traits::kSmemRowElems + c * 8), src, valid);
    }
  }
}

// keep[j] = 1 when key key0 + j exists and the mask (if any) keeps it.
template <class Traits>
__device__ __forceinline__ void write_keep_flags(uint8_t* keep, const uint8_t* mask_row, int key0,
                                                 int nk, int tid) {
  if (tid < Traits::kBlockN) {
    const int key = key0 + tid;
    keep[tid] = key < nk && (mask_row == nullptr || mask_row[key] != 0);
  }
}

template <class Traits, CudaDtype kDtype>
__global__ void __launch_bounds__(Traits::kThreads)
    attention_fwd_kernel(const AttentionCudaParams p) {
  using Ops = ElementOps<kDtype>;
  using T = typename Ops::type;
  constexpr int kBlockM = Traits::kBlockM, kBlockN = Traits::kBlockN;
  constexpr int kMTiles = Traits::kMTiles, kSTiles = Traits::kSTiles, kOTiles = Traits::kOTiles;
  constexpr int kRowElems = Traits::kSmemRowElems;
  constexpr int kRowBytes = 2 * kRowElems;
  static_assert(sizeof(T) == 2, "16-bit elements");

  extern __shared__ uint4 smem_storage[];  // 16-byte aligned
  T* smem_q = reinterpret_cast<T*>(smem_storage);
  T* smem_k = smem_q + Traits::kSmemQElems;
  T* smem_v = smem_k + Traits::kSmemKvElems;
  uint8_t* smem_keep = reinterpret_cast<uint8_t*>(smem_v + Traits::kSmemKvElems);

  const int q0 = blockIdx.x * kBlockM;
  const int h = blockIdx.y, b = blockIdx.z;
  const int tid = threadIdx.x, lane = tid % 32;
  const int warp_row0 = (tid / 32) * Traits::kWarpRows;  // this warp's first row in the tile
  const T* q = static_cast<const T*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1];
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride[0] + h * p.k_stride[1];
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride[0] + h * p.v_stride[1];
  const uint8_t* mask_row = p.key_mask ? p.key_mask + b * p.key_mask_batch_stride : nullptr;
  const int n_key_tiles = (p.nk + kBlockN - 1) / kBlockN;
  const float scale_log2 = p.softmax_scale * 1.4426950408889634f;  // log2(e)

  if (n_key_tiles > 0) {  // Q and the first K tile: one cp.async group
    copy_rows_async<Traits, kBlockM>(smem_q, q, p.q_stride[2], q0, p.nq, tid);
    copy_rows_async<Traits, kBlockN>(smem_k, k, p.k_stride[2], 0, p.nk, tid);
    write_keep_flags<Traits>(smem_keep, mask_row, 0, p.nk, tid);
    ptx::cp_async_commit();
  }

  // Accumulators in the mma C layout (sm80_ptx.cuh): acc_o[mi][nt] covers rows
  // warp_row0 + 16 mi + {g, g+8} and columns 8 nt + {2t, 2t+1}; row r = 0 is row g, r = 1 is g+8.
  float acc_o[kMTiles][kOTiles][4];
  float row_max[kMTiles][2], row_sum[kMTiles][2];  // row_sum: this lane's columns only
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int nt = 0; nt < kOTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_o[mi][nt][e] = 0.f;
#pragma unroll
    for (int r = 0; r < 2; ++r) row_max[mi][r] = -INFINITY, row_sum[mi][r] = 0.f;
  }

  // Per-lane ldmatrix row addresses (see sm80_ptx.cuh for which lanes address which matrix):
  //   Q (A operand, x4) and V (B operand, x4.trans): matrices (rows 0-7, cols 0-7),
  //     (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15) of a 16x16 block;
  //     the x2 forms (Q's k8 step, V's ninth n8 tile) use the first two, at column 0.
  //   K (B operand, x4, k16 step): (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7),
  //     (keys 8-15, d 8-15) = b0, b1 of key tile n and b0, b1 of key tile n+1;
  //     k8 step: keys 0-7, 8-15, 16-23, 24-31 at d 0-7 = b0 of four key tiles.
  const uint32_t q_lane =
      ptx::smem_address(smem_q) + (warp_row0 + lane % 16) * kRowBytes + (lane / 16) * 16;
  const uint32_t q_lane_k8 = ptx::smem_address(smem_q) + (warp_row0 + lane % 16) * kRowBytes;
  const uint32_t k_lane =
      ptx::smem_address(smem_k) + (lane % 8 + (lane / 16) * 8) * kRowBytes + ((lane / 8) % 2) * 16;
  const uint32_t k_lane_k8 = ptx::smem_address(smem_k) + lane * kRowBytes;
  const uint32_t v_lane = ptx::smem_address(smem_v) + (lane % 16) * kRowBytes + (lane / 16) * 16;
  const uint32_t v_lane_n8 = ptx::smem_address(smem_v) + (lane % 16) * kRowBytes;
  const int t2 = 2 * (lane % 4);  // this lane's first column in an n8 tile

  for (int tile = 0; tile < n_key_tiles; ++tile) {
    const int key0 = tile * kBlockN;
    ptx::cp_async_wait_all();
    __syncthreads();  // K_j and its keep flags are in; every warp is done with V_{j-1}
    copy_rows_async<Traits, kBlockN>(smem_v, v, p.v_stride[2], key0, p.nk, tid);
    ptx::cp_async_commit();

    // S = Q K_j^T: s[mi][nt] covers keys 8 nt + {2t, 2t+1}.
    float s[kMTiles][kSTiles][4];
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[mi][nt][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < Traits::kQkSteps16; ++ks) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi)
        ptx::ldmatrix_x4(a[mi], q_lane + mi * 16 * kRowBytes + ks * 32);
#pragma unroll
      for (int np = 0; np < kSTiles / 2; ++np) {
        uint32_t bk[4];
        ptx::ldmatrix_x4(bk, k_lane + np * 16 * kRowBytes + ks * 32);
#pragma unroll
        for (int mi = 0; mi < kMTiles; ++mi) {
          Ops::mma_k16(s[mi][2 * np], a[mi], bk[0], bk[1]);
          Ops::mma_k16(s[mi][2 * np + 1], a[mi], bk[2], bk[3]);
        }
      }
    }
    if constexpr (Traits::kQkStep8) {
      constexpr int kD0 = 16 * Traits::kQkSteps16;  // the last 8 columns of d
      uint32_t a[kMTiles][2];
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi)
        ptx::ldmatrix_x2(a[mi], q_lane_k8 + mi * 16 * kRowBytes + kD0 * 2);
#pragma unroll
      for (int nq = 0; nq < kSTiles / 4; ++nq) {
        uint32_t bk[4];
        ptx::ldmatrix_x4(bk, k_lane_k8 + nq * 32 * kRowBytes + kD0 * 2);
#pragma unroll
        for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
          for (int j = 0; j < 4; ++j) Ops::mma_k8(s[mi][4 * nq + j], a[mi], bk[j]);
      }
    }

    // Scale into the log2 domain; -inf for keys that are masked or past Nk.
    const bool tile_has_masked_keys = mask_row != nullptr || key0 + kBlockN > p.nk;
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[mi][nt][e] *= scale_log2;
          if (tile_has_masked_keys && !smem_keep[nt * 8 + t2 + (e & 1)]) s[mi][nt][e] = -INFINITY;
        }

    // Online softmax. A row's scores are spread over the 4 lanes of a quad (same g): reduce the
    // max with xor-shuffles 1 and 2; the row sum stays per lane until the end (all lanes of the
    // quad apply the same rescaling, so the partial sums add up).
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float tile_max = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt)
          tile_max = fmaxf(tile_max, fmaxf(s[mi][nt][2 * r], s[mi][nt][2 * r + 1]));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        const float new_max = fmaxf(row_max[mi][r], tile_max);
        // No kept key yet: subtract 0 instead of -inf (-inf - -inf is NaN); the scores are all
        // -inf then, so P = 0, and the old row_max is -inf too, so the rescale factor is 0.
        const float subtract = new_max == -INFINITY ? 0.f : new_max;
        const float rescale = ptx::exp2_approx(row_max[mi][r] - subtract);
        row_max[mi][r] = new_max;
        float tile_sum = 0.f;
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            float& x = s[mi][nt][2 * r + c];
            x = ptx::exp2_approx(x - subtract);
            tile_sum += x;
          }
        row_sum[mi][r] = row_sum[mi][r] * rescale + tile_sum;
#pragma unroll
        for (int nt = 0; nt < kOTiles; ++nt) {
          acc_o[mi][nt][2 * r] *= rescale;
          acc_o[mi][nt][2 * r + 1] *= rescale;
        }
      }

    ptx::cp_async_wait_all();
    __syncthreads();  // V_j is in; every warp is done with K_j and the keep flags
    if (tile + 1 < n_key_tiles) {
      copy_rows_async<Traits, kBlockN>(smem_k, k, p.k_stride[2], key0 + kBlockN, p.nk, tid);
      write_keep_flags<Traits>(smem_keep, mask_row, key0 + kBlockN, p.nk, tid);
      ptx::cp_async_commit();
    }

    // O += P V_j. The C fragments of S tiles 2kk and 2kk+1 are exactly the A fragment of keys
    // 16kk .. 16kk+15: a[0] = tile 2kk rows g, a[1] = tile 2kk row g+8, a[2], a[3] = tile 2kk+1.
#pragma unroll
    for (int kk = 0; kk < Traits::kPvSteps; ++kk) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi) {
        a[mi][0] = Ops::pack(s[mi][2 * kk][0], s[mi][2 * kk][1]);
        a[mi][1] = Ops::pack(s[mi][2 * kk][2], s[mi][2 * kk][3]);
        a[mi][2] = Ops::pack(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
        a[mi][3] = Ops::pack(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
      }
#pragma unroll
      for (int np = 0; np < kOTiles / 2; ++np) {
        uint32_t bv[4];
        ptx::ldmatrix_x4_trans(bv, v_lane + kk * 16 * kRowBytes + np * 32);
#pragma unroll
        for (int mi = 0; mi < kMTiles; ++mi) {
          Ops::mma_k16(acc_o[mi][2 * np], a[mi], bv[0], bv[1]);
          Ops::mma_k16(acc_o[mi][2 * np + 1], a[mi], bv[2], bv[3]);
        }
      }
      if constexpr (kOTiles % 2 == 1) {  // D = 72: the ninth n8 tile
        uint32_t bv[2];
        ptx::ldmatrix_x2_trans(bv, v_lane_n8 + kk * 16 * kRowBytes + (kOTiles - 1) * 16);
#pragma unroll
        for (int mi = 0; mi < kMTiles; ++mi)
          Ops::mma_k16(acc_o[mi][kOTiles - 1], a[mi], bv[0], bv[1]);
      }
    }
  }

  // out = O / l through this warp's own rows of smem_q (no other warp reads them), then
  // 16-byte stores of whole rows.
  float inv_sum[kMTiles][2];
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = row_sum[mi][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      inv_sum[mi][r] = l > 0.f ? 1.f / l : 0.f;  // l = 0: every key masked -> output 0
    }
  __syncwarp();
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      T* row = smem_q + (warp_row0 + 16 * mi + lane / 4 + 8 * r) * kRowElems + t2;
#pragma unroll
      for (int nt = 0; nt < kOTiles; ++nt) {
        const uint32_t bits = Ops::pack(acc_o[mi][nt][2 * r] * inv_sum[mi][r],
                                        acc_o[mi][nt][2 * r + 1] * inv_sum[mi][r]);
        *reinterpret_cast<uint32_t*>(row + nt * 8) = bits;
      }
    }
  __syncwarp();
  constexpr int kWarpChunks = Traits::kWarpRows * Traits::kRowChunks;
  T* out = static_cast<T*>(p.out);
#pragma unroll
  for (int it = 0; it < (kWarpChunks + 31) / 32; ++it) {
    const int chunk = lane + 32 * it;
    const int r = chunk / Traits::kRowChunks, c = chunk % Traits::kRowChunks;
    const int i = q0 + warp_row0 + r;  // query row
    if ((kWarpChunks % 32 == 0 || chunk < kWarpChunks) && i < p.nq) {
      const uint4 bits =
          *reinterpret_cast<const uint4*>(smem_q + (warp_row0 + r) * kRowElems + c * 8);
      const int64_t offset =
          ((static_cast<int64_t>(b) * p.nq + i) * p.heads + h) * Traits::kHeadDim + c * 8;
      *reinterpret_cast<uint4*>(out + offset) = bits;
    }
  }
}

}  // namespace attention_detail
}  // namespace dit::kernels::cuda
