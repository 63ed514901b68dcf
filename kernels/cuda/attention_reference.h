#pragma once
// Host-side test support for the CUDA attention forward, shared by dit-cuda-selftest (on a GPU)
// and dit-cuda-emulated-check (the kernel run on the CPU): test cases, inputs rounded to the
// kernel's dtype, their layout in memory (views into packed buffers, padded rows), the
// double-precision reference, and the comparison.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "attention_params.h"
#include "reference_common.h"

namespace dit::kernels::cuda::reference {

// Inputs lie in [-1, 1] (q in [-a, a]), so rounding P to the input type before P V moves an
// output by at most about the type's unit roundoff (2^-8 bf16, 2^-11 fp16), plus the rounding of
// the output itself.
inline double attention_tolerance(CudaDtype dtype) {
  return dtype == CudaDtype::kBFloat16 ? 2e-2 : 5e-3;
}

// ---- cases --------------------------------------------------------------------------------------

enum class MaskKind { kNone, kHalf, kFew, kFirstBatchMasked };

inline const char* mask_name(MaskKind m) {
  switch (m) {
    case MaskKind::kNone: return "none";
    case MaskKind::kHalf: return "half kept";
    case MaskKind::kFew: return "1-2 kept";
    case MaskKind::kFirstBatchMasked: return "batch 0 all masked";
  }
  return "?";
}

// How q, k, v lie in memory (all with unit stride along d).
enum class Layout {
  kPackedQkv,   // one [B, N, 3, H, D] buffer (a qkv projection; needs Nq == Nk)
  kTokenMajor,  // q [B, Nq, H, D], then k and v in one [B, Nk, 2, H, D] buffer (cross-attention)
  kPaddedRows,  // q, k, v each [B, H, N, D + 8]: rows not adjacent
};

inline const char* layout_name(Layout l) {
  switch (l) {
    case Layout::kPackedQkv: return "packed qkv";
    case Layout::kTokenMajor: return "token-major q, packed kv";
    case Layout::kPaddedRows: return "padded rows";
  }
  return "?";
}

struct AttentionCase {
  int batch, heads, nq, nk, head_dim;
  CudaDtype dtype;
  MaskKind mask = MaskKind::kNone;
  Layout layout = Layout::kPaddedRows;
  float q_amplitude = 1.f;  // q uniform in [-a, a]: a > 1 sharpens the softmax
  float scale = 0.f;        // 0: 1/sqrt(head_dim)

  float softmax_scale() const {
    return scale != 0.f ? scale : 1.f / std::sqrt(static_cast<float>(head_dim));
  }
  std::string describe() const {
    char text[200];
    std::snprintf(text, sizeof(text),
                  "B=%d H=%d Nq=%d Nk=%d D=%d %s, mask %s, %s, |q|<=%g, scale %g", batch, heads, nq,
                  nk, head_dim, dtype_name(dtype), mask_name(mask), layout_name(layout),
                  q_amplitude, softmax_scale());
    return text;
  }
};

// Logical inputs, already rounded to the dtype: q[((b H + h) Nq + i) D + d], k and v alike,
// keep[b Nk + j] (empty: no mask).
struct AttentionInputs {
  std::vector<float> q, k, v;
  std::vector<uint8_t> keep;
};

inline AttentionInputs make_attention_inputs(const AttentionCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(-1.f, 1.f);
  AttentionInputs in;
  const int64_t bh = int64_t{c.batch} * c.heads;
  in.q.resize(bh * c.nq * c.head_dim);
  in.k.resize(bh * c.nk * c.head_dim);
  in.v.resize(bh * c.nk * c.head_dim);
  for (auto& x : in.q) x = round_to(c.q_amplitude * unit(rng), c.dtype);
  for (auto& x : in.k) x = round_to(unit(rng), c.dtype);
  for (auto& x : in.v) x = round_to(unit(rng), c.dtype);
  if (c.mask == MaskKind::kNone) return in;
  in.keep.assign(int64_t{c.batch} * c.nk, 0);
  std::bernoulli_distribution coin(0.5);
  for (int b = 0; b < c.batch; ++b) {
    uint8_t* row = &in.keep[int64_t{b} * c.nk];
    if (c.mask == MaskKind::kFew) {
      row[(5 * b + 3) % c.nk] = 1;
      row[c.nk - 1] = 1;
    } else if (!(c.mask == MaskKind::kFirstBatchMasked && b == 0)) {
      for (int j = 0; j < c.nk; ++j) row[j] = coin(rng);
    }
  }
  return in;
}

// out[((b Nq + i) H + h) D + d] (the kernel's [B, Nq, H, D]) in double; a query with no kept key
// gets 0.
inline std::vector<double> reference_attention(const AttentionCase& c, const AttentionInputs& in) {
  const int D = c.head_dim;
  std::vector<double> out(int64_t{c.batch} * c.nq * c.heads * D, 0.0);
  const double scale = c.softmax_scale();
  parallel_for(int64_t{c.batch} * c.heads * c.nq, [&](int64_t begin, int64_t end) {
    std::vector<double> score(c.nk), acc(D);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t i = row % c.nq, bh = row / c.nq, b = bh / c.heads, h = bh % c.heads;
      const float* q = &in.q[(bh * c.nq + i) * D];
      double max_score = -INFINITY;
      for (int j = 0; j < c.nk; ++j) {
        if (!in.keep.empty() && !in.keep[b * c.nk + j]) {
          score[j] = -INFINITY;
          continue;
        }
        const float* k = &in.k[(bh * c.nk + j) * D];
        double dot = 0;
        for (int d = 0; d < D; ++d) dot += double{q[d]} * k[d];
        score[j] = dot * scale;
        max_score = std::max(max_score, score[j]);
      }
      if (max_score == -INFINITY) continue;  // no kept key: 0
      std::fill(acc.begin(), acc.end(), 0.0);
      double sum = 0;
      for (int j = 0; j < c.nk; ++j) {
        if (score[j] == -INFINITY) continue;
        const double p = std::exp(score[j] - max_score);
        sum += p;
        const float* v = &in.v[(bh * c.nk + j) * D];
        for (int d = 0; d < D; ++d) acc[d] += p * v[d];
      }
      double* o = &out[((b * c.nq + i) * c.heads + h) * D];
      for (int d = 0; d < D; ++d) o[d] = acc[d] / sum;
    }
  });
  return out;
}

// ---- the inputs as the kernel reads them --------------------------------------------------------

// q, k, v in one buffer of 16-bit elements laid out as c.layout says; every element that is not
// part of q, k or v holds a NaN (0x7fff in bf16 and fp16), so reading one shows in the output.
// The mask (if any) in rows of Nk + 3 bytes (an odd batch stride), padding 0xab.
struct PackedAttention {
  struct Placement {
    int64_t offset;     // elements from the buffer start
    int64_t stride[3];  // batch, head, row
  };
  std::vector<uint16_t> qkv;
  Placement q{}, k{}, v{};
  std::vector<uint8_t> mask;
  int64_t mask_stride = 0;
  int64_t out_elems = 0;  // B Nq H D

  static constexpr uint16_t kPoison = 0x7fff;

  // Parameters with q, k, v at qkv_base (a copy of `qkv`), the mask at mask_base (a copy of
  // `mask`, or null) and the output at out.
  AttentionCudaParams params(const AttentionCase& c, const void* qkv_base, const uint8_t* mask_base,
                             void* out) const {
    AttentionCudaParams p;
    const uint16_t* base = static_cast<const uint16_t*>(qkv_base);
    p.q = base + q.offset;
    p.k = base + k.offset;
    p.v = base + v.offset;
    p.out = out;
    std::copy_n(q.stride, 3, p.q_stride);
    std::copy_n(k.stride, 3, p.k_stride);
    std::copy_n(v.stride, 3, p.v_stride);
    p.key_mask = mask_base;
    p.key_mask_batch_stride = mask_base ? mask_stride : 0;
    p.batch = c.batch;
    p.heads = c.heads;
    p.nq = c.nq;
    p.nk = c.nk;
    p.head_dim = c.head_dim;
    p.softmax_scale = c.softmax_scale();
    p.dtype = c.dtype;
    return p;
  }
};

inline PackedAttention pack_attention(const AttentionCase& c, const AttentionInputs& in) {
  const int64_t B = c.batch, H = c.heads, Nq = c.nq, Nk = c.nk, D = c.head_dim;
  PackedAttention packed;
  int64_t total = 0;
  switch (c.layout) {
    case Layout::kPackedQkv:  // [B, N, 3, H, D]
      packed.q = {0, {Nq * 3 * H * D, D, 3 * H * D}};
      packed.k = packed.q;
      packed.k.offset = H * D;
      packed.v = packed.q;
      packed.v.offset = 2 * H * D;
      total = B * Nq * 3 * H * D;
      break;
    case Layout::kTokenMajor:  // q [B, Nq, H, D], then kv [B, Nk, 2, H, D]
      packed.q = {0, {Nq * H * D, D, H * D}};
      packed.k = {B * Nq * H * D, {Nk * 2 * H * D, D, 2 * H * D}};
      packed.v = packed.k;
      packed.v.offset += H * D;
      total = B * Nq * H * D + B * Nk * 2 * H * D;
      break;
    case Layout::kPaddedRows:  // q, k, v each [B, H, N, D + 8]
      packed.q = {0, {H * Nq * (D + 8), Nq * (D + 8), D + 8}};
      packed.k = {B * H * Nq * (D + 8), {H * Nk * (D + 8), Nk * (D + 8), D + 8}};
      packed.v = packed.k;
      packed.v.offset += B * H * Nk * (D + 8);
      total = packed.v.offset + B * H * Nk * (D + 8);
      break;
  }
  packed.qkv.assign(total, PackedAttention::kPoison);
  auto scatter = [&](const PackedAttention::Placement& at, const std::vector<float>& x, int64_t n) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < n; ++i)
          for (int64_t d = 0; d < D; ++d)
            packed.qkv[at.offset + b * at.stride[0] + h * at.stride[1] + i * at.stride[2] + d] =
                to_bits16(x[((b * H + h) * n + i) * D + d], c.dtype);
  };
  scatter(packed.q, in.q, Nq);
  scatter(packed.k, in.k, Nk);
  scatter(packed.v, in.v, Nk);
  if (!in.keep.empty()) {
    packed.mask_stride = Nk + 3;
    packed.mask.assign(B * packed.mask_stride, 0xab);
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(&in.keep[b * Nk], Nk, &packed.mask[b * packed.mask_stride]);
  }
  packed.out_elems = B * Nq * H * D;
  return packed;
}

// The output as 16-bit elements [B, Nq, H, D] against the reference; `guard` elements after it
// must still hold the 0xffff they were set to (counted as non-finite otherwise).
inline Comparison compare_attention_output(const AttentionCase& c, const std::vector<double>& ref,
                                           const std::vector<uint16_t>& got, int64_t guard) {
  Comparison cmp;
  const int64_t n = static_cast<int64_t>(ref.size());
  for (int64_t i = 0; i < n; ++i) cmp.add(i, from_bits16(got[i], c.dtype), ref[i]);
  for (int64_t i = n; i < n + guard; ++i)
    if (got[i] != 0xffff) cmp.add(i, NAN, 0.0);
  return cmp;
}

}  // namespace dit::kernels::cuda::reference
