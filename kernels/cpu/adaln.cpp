// Fused adaLN pieces on CPU, fp32, no autograd:
//   adaln_layernorm: LN(x) * (1 + scale) + shift (LayerNorm without affine, eps 1e-6) reading x
//                    twice from L1 per row and writing once, instead of libtorch's four passes
//                    (layer_norm, 1 + scale, *, +) with three temporaries;
//   gate_residual:   x + gate[:, None, :] * y in one pass instead of two with one temporary.
// Rows run on libtorch's intra-op threads. The row loops are compiled for AVX-512, AVX2+FMA
// and baseline x86-64 (GCC target_clones picks one at load time); elsewhere they are plain C++.
#include <ATen/Parallel.h>
#include <dit/error.h>
#include <dit/kernels.h>
#include <fmt/format.h>

#include <cmath>

#include "kernels/backends.h"

namespace dit::kernels::cpu {

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define DIT_ROW_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define DIT_ROW_CLONES
#endif

constexpr int kLanes = 16;  // independent partial sums: lets the compiler vectorise reductions

// out[i] = (x[i] - mean) * rstd * (1 + scale[i]) + shift[i] for one row of length D.
DIT_ROW_CLONES
void layernorm_modulate_row(const float* __restrict x, const float* __restrict shift,
                            const float* __restrict scale, float* __restrict out, int64_t D) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= D; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  float sum = 0.f;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  for (; i < D; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(D);

  float acc2[kLanes] = {};
  i = 0;
  for (; i + kLanes <= D; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      const float c = x[i + j] - mean;
      acc2[j] += c * c;
    }
  float ss = 0.f;
  for (int j = 0; j < kLanes; ++j) ss += acc2[j];
  for (; i < D; ++i) ss += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.f / std::sqrt(ss / static_cast<float>(D) + 1e-6f);

  for (int64_t d = 0; d < D; ++d) out[d] = (x[d] - mean) * rstd * (1.f + scale[d]) + shift[d];
}

DIT_ROW_CLONES
void gate_residual_row(const float* __restrict x, const float* __restrict gate,
                       const float* __restrict y, float* __restrict out, int64_t D) {
  for (int64_t d = 0; d < D; ++d) out[d] = x[d] + gate[d] * y[d];
}

// x [B, N, D] and a per-batch vector a [B, D], CPU float32.
DIT_ROW_CLONES
void gate_residual_inplace_row(float* x, const float* __restrict gate, const float* __restrict y,
                               int64_t D) {
  for (int64_t d = 0; d < D; ++d) x[d] += gate[d] * y[d];
}

void check_bnd(const char* op, const torch::Tensor& x, const torch::Tensor& a, const char* a_name) {
  if (x.dim() != 3)
    throw Error(fmt::format("kernels::{}: x must be [B, N, D], got {} dims", op, x.dim()));
  for (const auto* t : {&x, &a})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32)
      throw Error(fmt::format("kernels::cpu::{}: inputs must be CPU float32 tensors", op));
  if (a.dim() != 2 || a.size(0) != x.size(0) || a.size(1) != x.size(2))
    throw Error(fmt::format("kernels::{}: {} must be [B={}, D={}]", op, a_name, x.size(0), x.size(2)));
}

// Rows of [B, D] with unit stride along D (chunks of the adaLN projection usually are).
torch::Tensor unit_inner(const torch::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }

}  // namespace

torch::Tensor adaln_layernorm(const torch::Tensor& x, const torch::Tensor& shift,
                              const torch::Tensor& scale) {
  auto out = torch::empty(x.sizes(), x.options().memory_format(torch::MemoryFormat::Contiguous));
  adaln_layernorm_out(out, x, shift, scale);
  return out;
}

void adaln_layernorm_out(const torch::Tensor& out, const torch::Tensor& x_in,
                         const torch::Tensor& shift_in, const torch::Tensor& scale_in) {
  check_bnd("adaln_layernorm", x_in, shift_in, "shift");
  check_bnd("adaln_layernorm", x_in, scale_in, "scale");
  if (out.sizes() != x_in.sizes() || !out.is_contiguous() || out.scalar_type() != torch::kFloat32)
    throw Error("kernels::adaln_layernorm_out: out must be a contiguous float32 tensor shaped like x");
  const auto x = x_in.contiguous();  // [B, N, D]
  const auto shift = unit_inner(shift_in), scale = unit_inner(scale_in);
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  const float* xp = x.data_ptr<float>();
  const float *sh = shift.data_ptr<float>(), *sc = scale.data_ptr<float>();
  const int64_t sh_b = shift.stride(0), sc_b = scale.stride(0);
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * N, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t row = begin; row < end; ++row) {
                       const int64_t b = row / N;
                       layernorm_modulate_row(xp + row * D, sh + b * sh_b, sc + b * sc_b,
                                              op + row * D, D);
                     }
                   });
}

torch::Tensor gate_residual(const torch::Tensor& x_in, const torch::Tensor& gate_in,
                            const torch::Tensor& y_in) {
  check_bnd("gate_residual", x_in, gate_in, "gate");
  if (y_in.sizes() != x_in.sizes() || y_in.scalar_type() != torch::kFloat32 || !y_in.device().is_cpu())
    throw Error("kernels::gate_residual: x and y must have the same shape [B, N, D] (CPU float32)");
  const auto x = x_in.contiguous(), y = y_in.contiguous();  // [B, N, D]
  const auto gate = unit_inner(gate_in);                    // [B, D]
  const int64_t B = x.size(0), N = x.size(1), D = x.size(2);
  auto out = torch::empty_like(x);
  const float *xp = x.data_ptr<float>(), *yp = y.data_ptr<float>(), *gp = gate.data_ptr<float>();
  const int64_t g_b = gate.stride(0);
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * N, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t row = begin; row < end; ++row)
                       gate_residual_row(xp + row * D, gp + (row / N) * g_b, yp + row * D,
                                         op + row * D, D);
                   });
  return out;
}

void gate_residual_(const torch::Tensor& x, const torch::Tensor& gate_in, const torch::Tensor& y_in) {
  check_bnd("gate_residual_", x, gate_in, "gate");
  if (y_in.sizes() != x.sizes() || y_in.scalar_type() != torch::kFloat32 || !y_in.device().is_cpu())
    throw Error("kernels::gate_residual_: x and y must have the same shape [B, N, D] (CPU float32)");
  if (!x.is_contiguous()) throw Error("kernels::gate_residual_: x must be contiguous");
  const auto y = y_in.contiguous();
  const auto gate = unit_inner(gate_in);
  const int64_t N = x.size(1), D = x.size(2);
  float* xp = x.data_ptr<float>();
  const float *yp = y.data_ptr<float>(), *gp = gate.data_ptr<float>();
  const int64_t g_b = gate.stride(0);
  at::parallel_for(0, x.size(0) * N, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t row = begin; row < end; ++row)
                       gate_residual_inplace_row(xp + row * D, gp + (row / N) * g_b, yp + row * D, D);
                   });
}

}  // namespace dit::kernels::cpu
