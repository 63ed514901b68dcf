#pragma once
// Host-side test support for the CUDA adaLN kernels (adaln_params.h), shared by dit-cuda-selftest
// and dit-cuda-emulated-check: cases, inputs rounded to the dtype, where they lie in memory, and
// the double-precision references of adaln_modulate and gate_residual.
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "adaln_params.h"
#include "reference_common.h"

namespace dit::kernels::cuda::reference {

// Output rounding: unit roundoff 2^-8 for bf16, 2^-11 for fp16.
inline double adaln_tolerance(CudaDtype dtype) {
  return dtype == CudaDtype::kFloat32 ? 1e-4 : dtype == CudaDtype::kBFloat16 ? 1e-2 : 2e-3;
}
inline double gate_residual_tolerance(CudaDtype dtype) {
  return dtype == CudaDtype::kFloat32 ? 1e-5 : dtype == CudaDtype::kBFloat16 ? 1e-2 : 2e-3;
}

struct RowwiseCase {
  int64_t batch, tokens, dim;
  CudaDtype dtype;
  bool in_place = false;  // adaln_modulate with out = x (gate_residual is always in place)
  float x_mean = 0.f;     // x = mean + U(-1, 1): a large mean tests the variance
  int64_t x_offset = 0;   // elements: 1 misaligns x and takes the element-wise path

  int64_t rows() const { return batch * tokens; }
  std::string describe() const {
    char text[160];
    std::snprintf(text, sizeof(text), "B=%lld N=%lld D=%lld %s, x mean %g, x offset %lld%s",
                  (long long)batch, (long long)tokens, (long long)dim, dtype_name(dtype), x_mean,
                  (long long)x_offset, in_place ? ", out = x" : "");
    return text;
  }
};

// D = 1, odd and even D off the 16-byte grid, the DiT-XL width, large D, a large mean, in place,
// a misaligned x.
inline std::vector<RowwiseCase> rowwise_cases(CudaDtype dtype) {
  return {
      {1, 1, 1, dtype},
      {2, 7, 64, dtype},
      {2, 33, 1152, dtype, true},
      {1, 5, 100, dtype},
      {3, 17, 385, dtype},
      {1, 3, 4096, dtype},
      {2, 4, 1152, dtype, false, 100.f},
      {2, 9, 384, dtype, true, 0.f, 1},
  };
}

// Inputs rounded to the dtype: x [rows, D] (stored after x_offset elements), y [rows, D], and the
// adaLN projection [B, 6D] whose chunks 0, 1, 2 are shift, scale and gate (batch stride 6D).
struct RowwiseInputs {
  std::vector<float> x, y, modulation;
};

inline RowwiseInputs make_rowwise_inputs(const RowwiseCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.f, 1.f);
  auto values = [&](int64_t n, float mean) {
    std::vector<float> v(n);
    for (auto& e : v) e = round_to(mean + unit(rng), c.dtype);
    return v;
  };
  RowwiseInputs in;
  in.x = values(c.rows() * c.dim, c.x_mean);
  in.y = values(c.rows() * c.dim, 0.f);
  in.modulation = values(c.batch * 6 * c.dim, 0.f);
  return in;
}

// LN(x) (1 + scale) + shift, LayerNorm without affine, eps 1e-6: [rows, D].
inline std::vector<double> reference_adaln_modulate(const RowwiseCase& c, const RowwiseInputs& in) {
  const int64_t D = c.dim;
  std::vector<double> out(c.rows() * D);
  for (int64_t r = 0; r < c.rows(); ++r) {
    const float* x = &in.x[r * D];
    const float* shift = &in.modulation[(r / c.tokens) * 6 * D];
    const float* scale = shift + D;
    double mean = 0, var = 0;
    for (int64_t d = 0; d < D; ++d) mean += x[d];
    mean /= D;
    for (int64_t d = 0; d < D; ++d) var += (x[d] - mean) * (x[d] - mean);
    var /= D;
    const double rstd = 1.0 / std::sqrt(var + 1e-6);
    for (int64_t d = 0; d < D; ++d)
      out[r * D + d] = (x[d] - mean) * rstd * (1.0 + scale[d]) + shift[d];
  }
  return out;
}

// x + gate y: [rows, D].
inline std::vector<double> reference_gate_residual(const RowwiseCase& c, const RowwiseInputs& in) {
  const int64_t D = c.dim;
  std::vector<double> out(c.rows() * D);
  for (int64_t r = 0; r < c.rows(); ++r) {
    const float* gate = &in.modulation[(r / c.tokens) * 6 * D + 2 * D];
    for (int64_t d = 0; d < D; ++d)
      out[r * D + d] = double{in.x[r * D + d]} + double{gate[d]} * in.y[r * D + d];
  }
  return out;
}

// Host images of the tensors as the kernels see them: x after x_offset elements.
struct RowwiseBuffers {
  std::vector<unsigned char> x, y, modulation;
};

inline RowwiseBuffers rowwise_buffers(const RowwiseCase& c, const RowwiseInputs& in) {
  std::vector<float> x(c.x_offset, 0.f);
  x.insert(x.end(), in.x.begin(), in.x.end());
  return {to_device_bytes(x, c.dtype), to_device_bytes(in.y, c.dtype),
          to_device_bytes(in.modulation, c.dtype)};
}

// Parameters for buffers at x_base, y_base, modulation_base (copies of rowwise_buffers) and an
// output at out_base (ignored when the case is in place).
inline AdaLNCudaParams adaln_params_for(const RowwiseCase& c, void* x_base,
                                        const void* modulation_base, void* out_base) {
  const int64_t elem = dtype_bytes(c.dtype);
  AdaLNCudaParams p;
  p.x = static_cast<unsigned char*>(x_base) + c.x_offset * elem;
  p.shift = modulation_base;                                                    // chunk 0
  p.scale = static_cast<const unsigned char*>(modulation_base) + c.dim * elem;  // chunk 1
  p.shift_batch_stride = p.scale_batch_stride = 6 * c.dim;
  p.out = c.in_place ? const_cast<void*>(p.x) : out_base;
  p.batch = c.batch;
  p.tokens = c.tokens;
  p.dim = c.dim;
  p.dtype = c.dtype;
  return p;
}

inline GateResidualCudaParams gate_params_for(const RowwiseCase& c, void* x_base,
                                              const void* y_base, const void* modulation_base) {
  const int64_t elem = dtype_bytes(c.dtype);
  GateResidualCudaParams p;
  p.x = static_cast<unsigned char*>(x_base) + c.x_offset * elem;
  p.y = y_base;
  p.gate = static_cast<const unsigned char*>(modulation_base) + 2 * c.dim * elem;  // chunk 2
  p.gate_batch_stride = 6 * c.dim;
  p.batch = c.batch;
  p.tokens = c.tokens;
  p.dim = c.dim;
  p.dtype = c.dtype;
  return p;
}

// The [rows, D] result found at `offset` elements into `bytes`, against the reference.
inline Comparison compare_rowwise(const RowwiseCase& c, const std::vector<double>& ref,
                                  const std::vector<unsigned char>& bytes, int64_t offset) {
  const std::vector<float> got = from_device_bytes(bytes, c.dtype);
  Comparison cmp;
  for (int64_t i = 0; i < static_cast<int64_t>(ref.size()); ++i)
    cmp.add(i, got[offset + i], ref[i]);
  return cmp;
}

}  // namespace dit::kernels::cuda::reference
