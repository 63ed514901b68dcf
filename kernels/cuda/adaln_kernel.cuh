#pragma once
// adaLN kernels (adaln_params.h): LayerNorm + modulate and the gated residual. One warp per row
// of D elements, fp32 math, 16-byte loads and stores when the rows allow them. Launched by
// adaln.cu; also compiled for the CPU by emulation/emulated_check.cpp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#include "adaln_params.h"
#ifdef DIT_CUDA_EMULATION
#include "emulation/sm80_emulated.h"  // warp shuffles on the CPU (emulated_check)
#endif

namespace dit::kernels::cuda::adaln_detail {

constexpr int kWarpsPerBlock = 8;
constexpr int kThreads = 32 * kWarpsPerBlock;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

// kVec consecutive elements <-> floats: one element, or one 16-byte access (p 16-byte aligned).
template <typename T, int kVec>
__device__ __forceinline__ void load(const T* p, float (&v)[kVec]) {
  static_assert(kVec == 1 || kVec * sizeof(T) == 16, "one element or 16 bytes");
  if constexpr (kVec == 1) {
    v[0] = to_float(*p);
  } else {
    const uint4 bits = *reinterpret_cast<const uint4*>(p);
    T e[kVec];  // bf16 and fp16 are trivially copyable classes: copy through void*
    memcpy(static_cast<void*>(e), &bits, sizeof(bits));
#pragma unroll
    for (int j = 0; j < kVec; ++j) v[j] = to_float(e[j]);
  }
}

template <typename T, int kVec>
__device__ __forceinline__ void store(T* p, const float (&v)[kVec]) {
  if constexpr (kVec == 1) {
    *p = from_float<T>(v[0]);
  } else {
    T e[kVec];
#pragma unroll
    for (int j = 0; j < kVec; ++j) e[j] = from_float<T>(v[j]);
    uint4 bits;
    memcpy(&bits, e, sizeof(bits));
    *reinterpret_cast<uint4*>(p) = bits;
  }
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Row `row` of x -> out. Lane l handles elements [l kVec, l kVec + kVec) + 32 kVec n, the same
// ones in both passes, so out may alias x (each element is read before the same lane writes it).
template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) adaln_modulate_kernel(const AdaLNCudaParams p) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= p.batch * p.tokens) return;  // the whole warp: the shuffles below see full warps
  const int lane = threadIdx.x % 32;
  const int64_t b = row / p.tokens;
  const T* x = static_cast<const T*>(p.x) + row * p.dim;
  const T* shift = static_cast<const T*>(p.shift) + b * p.shift_batch_stride;
  const T* scale = static_cast<const T*>(p.scale) + b * p.scale_batch_stride;
  T* out = static_cast<T*>(p.out) + row * p.dim;

  // Moments of x - x[0] (the shifted-data algorithm): the variance of x without the
  // cancellation of E[x^2] - E[x]^2 when |mean| >> std.
  const float pivot = to_float(x[0]);
  float sum = 0.f, sum_sq = 0.f;
  for (int64_t i = lane * kVec; i < p.dim; i += 32 * kVec) {
    float v[kVec];
    load<T, kVec>(x + i, v);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      const float d = v[j] - pivot;
      sum += d;
      sum_sq += d * d;
    }
  }
  sum = warp_sum(sum);
  sum_sq = warp_sum(sum_sq);
  const float inv_dim = 1.f / static_cast<float>(p.dim);
  const float mean_shifted = sum * inv_dim;  // mean - pivot
  const float var = fmaxf(sum_sq * inv_dim - mean_shifted * mean_shifted, 0.f);
  const float rstd = rsqrtf(var + p.eps);

  for (int64_t i = lane * kVec; i < p.dim; i += 32 * kVec) {
    float v[kVec], sh[kVec], sc[kVec];
    load<T, kVec>(x + i, v);
    load<T, kVec>(shift + i, sh);
    load<T, kVec>(scale + i, sc);
#pragma unroll
    for (int j = 0; j < kVec; ++j)
      v[j] = ((v[j] - pivot) - mean_shifted) * rstd * (1.f + sc[j]) + sh[j];
    store<T, kVec>(out + i, v);
  }
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads) gate_residual_kernel(const GateResidualCudaParams p) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= p.batch * p.tokens) return;
  const int lane = threadIdx.x % 32;
  T* x = static_cast<T*>(p.x) + row * p.dim;
  const T* y = static_cast<const T*>(p.y) + row * p.dim;
  const T* gate = static_cast<const T*>(p.gate) + (row / p.tokens) * p.gate_batch_stride;
  for (int64_t i = lane * kVec; i < p.dim; i += 32 * kVec) {
    float xv[kVec], yv[kVec], gv[kVec];
    load<T, kVec>(x + i, xv);
    load<T, kVec>(y + i, yv);
    load<T, kVec>(gate + i, gv);
#pragma unroll
    for (int j = 0; j < kVec; ++j) xv[j] += gv[j] * yv[j];
    store<T, kVec>(x + i, xv);
  }
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Whether every row allows 16-byte accesses: D and the batch strides multiples of the vector,
// every base pointer 16-byte aligned.
template <typename T>
bool vectorised(const AdaLNCudaParams& p) {
  constexpr int kVec = 16 / sizeof(T);
  return p.dim % kVec == 0 && p.shift_batch_stride % kVec == 0 &&
         p.scale_batch_stride % kVec == 0 && aligned16(p.x) && aligned16(p.out) &&
         aligned16(p.shift) && aligned16(p.scale);
}
template <typename T>
bool vectorised(const GateResidualCudaParams& p) {
  constexpr int kVec = 16 / sizeof(T);
  return p.dim % kVec == 0 && p.gate_batch_stride % kVec == 0 && aligned16(p.x) && aligned16(p.y) &&
         aligned16(p.gate);
}

inline unsigned blocks_for(int64_t rows) {
  return static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace dit::kernels::cuda::adaln_detail
