// Bridge from tensors to the fused CPU attention (attention_params.h): checks, picks the ISA,
// packs the kept keys and values of each (batch, head), and runs the tiles on libtorch's
// intra-op threads (at::parallel_for, so `--threads` / set_threads applies).
#include <ATen/Parallel.h>
#include <dit/error.h>
#include <dit/kernels.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "attention_params.h"

namespace dit::kernels::cpu {

namespace {

struct IsaEntry {
  const char* name;
  AttentionTraits (*traits)();
  void (*forward)(const AttentionParams&, int64_t, int64_t, float*);
  bool (*supported)();
};

bool cpu_has_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && attention_traits_avx512().width > 0;
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         attention_traits_avx2().width > 0;
#else
  return false;
#endif
}

bool always() { return true; }

// Best first.
const IsaEntry kIsas[] = {
    {"avx512", attention_traits_avx512, attention_forward_avx512, cpu_has_avx512},
    {"avx2", attention_traits_avx2, attention_forward_avx2, cpu_has_avx2},
    {"scalar", attention_traits_scalar, attention_forward_scalar, always},
};

const IsaEntry& find_isa(const std::string& name) {
  if (name.empty()) {
    for (const auto& e : kIsas)
      if (e.supported()) return e;
  }
  for (const auto& e : kIsas) {
    if (name != e.name) continue;
    if (!e.supported())
      throw Error(fmt::format("kernels: CPU ISA '{}' is not available on this machine (have: {})",
                              name, fmt::join(isas(), ", ")));
    return e;
  }
  throw Error(fmt::format("kernels: unknown CPU ISA '{}' (expected one of: avx512, avx2, scalar)",
                          name));
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

std::vector<std::string> isas() {
  std::vector<std::string> out;
  for (const auto& e : kIsas)
    if (e.supported()) out.push_back(e.name);
  return out;
}

std::string best_isa() { return find_isa("").name; }

torch::Tensor attention(const torch::Tensor& q_in, const torch::Tensor& k_in,
                        const torch::Tensor& v_in, const AttentionOptions& opts,
                        const std::string& isa) {
  for (const auto* t : {&q_in, &k_in, &v_in})
    if (!t->device().is_cpu() || t->scalar_type() != torch::kFloat32)
      throw Error(fmt::format("kernels::cpu::attention: q, k, v must be CPU float32 tensors, got {} {}",
                              t->device().str(), c10::toString(t->scalar_type())));
  const IsaEntry& e = find_isa(isa);
  const AttentionTraits tr = e.traits();
  // Zero strides (expanded inputs) and any other strides are fine; only the element type is fixed.
  const torch::Tensor &q = q_in, &k = k_in, &v = v_in;
  const int64_t B = q.size(0), H = q.size(1), Nq = q.size(2), D = q.size(3), Nk = k.size(2);

  auto out = torch::empty({B, Nq, H, D}, q.options());  // [B, Nq, H, D]: heads interleaved
  if (B == 0 || H == 0 || Nq == 0 || D == 0) return out.permute({0, 2, 1, 3});

  // Kept keys per batch element (all of them without a mask).
  std::vector<int64_t> nk(B, Nk);
  std::vector<std::vector<int64_t>> kept;
  if (opts.key_mask) {
    auto mask = opts.key_mask->to(torch::kCPU).to(torch::kBool).contiguous();  // [B, Nk]
    const bool* mp = mask.data_ptr<bool>();
    kept.resize(B);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < Nk; ++j)
        if (mp[b * Nk + j]) kept[b].push_back(j);
      nk[b] = static_cast<int64_t>(kept[b].size());
    }
  }
  const int64_t nk_max = *std::max_element(nk.begin(), nk.end());
  const int64_t nk_pad = round_up(std::max<int64_t>(nk_max, 1), tr.key_tile);
  const int64_t d_pad = round_up(D, tr.width);

  // Pack K^T [BH, D, nk_pad] and V [BH, nk_pad, d_pad], zero-padded.
  auto kt = torch::empty({B * H, D, nk_pad}, q.options());
  auto vp = torch::empty({B * H, nk_pad, d_pad}, q.options());
  {
    const float *kd = k.data_ptr<float>(), *vd = v.data_ptr<float>();
    float *ktd = kt.data_ptr<float>(), *vpd = vp.data_ptr<float>();
    const auto ks = k.strides(), vs = v.strides();
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / H, h = bh % H, n = nk[b];
        const float* kb = kd + b * ks[0] + h * ks[1];
        const float* vb = vd + b * vs[0] + h * vs[1];
        float* ktb = ktd + bh * D * nk_pad;
        float* vpb = vpd + bh * nk_pad * d_pad;
        // K^T in blocks of 8 keys, so each d writes 8 consecutive floats.
        constexpr int64_t kJ = 8;
        for (int64_t j0 = 0; j0 < n; j0 += kJ) {
          const int64_t nj = std::min(kJ, n - j0);
          const float* kr[kJ];
          for (int64_t jj = 0; jj < nj; ++jj)
            kr[jj] = kb + (kept.empty() ? j0 + jj : kept[b][j0 + jj]) * ks[2];
          for (int64_t d = 0; d < D; ++d) {
            float* dst = ktb + d * nk_pad + j0;
            for (int64_t jj = 0; jj < nj; ++jj) dst[jj] = kr[jj][d * ks[3]];
          }
        }
        for (int64_t j = 0; j < n; ++j) {
          const float* vr = vb + (kept.empty() ? j : kept[b][j]) * vs[2];
          float* vrow = vpb + j * d_pad;
          if (vs[3] == 1)
            std::memcpy(vrow, vr, sizeof(float) * D);
          else
            for (int64_t d = 0; d < D; ++d) vrow[d] = vr[d * vs[3]];
          for (int64_t d = D; d < d_pad; ++d) vrow[d] = 0.f;
        }
        for (int64_t d = 0; d < D; ++d)
          std::fill(ktb + d * nk_pad + n, ktb + (d + 1) * nk_pad, 0.f);
        std::fill(vpb + n * d_pad, vpb + nk_pad * d_pad, 0.f);
      }
    });
  }

  AttentionParams p{};
  p.q = q.data_ptr<float>();
  p.o = out.data_ptr<float>();
  for (int i = 0; i < 4; ++i) p.q_stride[i] = q.stride(i);
  p.o_stride[0] = Nq * H * D, p.o_stride[1] = D, p.o_stride[2] = H * D, p.o_stride[3] = 1;
  p.B = B, p.H = H, p.Nq = Nq, p.D = D;
  p.kt = kt.data_ptr<float>();
  p.vp = vp.data_ptr<float>();
  p.nk_pad = nk_pad, p.d_pad = d_pad;
  p.nk = nk.data();
  p.scale = static_cast<float>(opts.scale.value_or(1.0 / std::sqrt(static_cast<double>(D))));

  // Query tile: 64 rows, halved while there are fewer than 4 tasks per thread.
  const int64_t R = tr.row_block;
  const int64_t threads = at::get_num_threads();
  int64_t q_tile = std::min<int64_t>(64, round_up(Nq, R));
  auto tasks_for = [&](int64_t t) { return B * H * ((Nq + t - 1) / t); };
  while (q_tile > R && tasks_for(q_tile) < 4 * threads) q_tile = round_up(q_tile / 2, R);
  p.q_tile = q_tile;
  const int64_t tasks = tasks_for(q_tile);
  const int64_t scratch_n = attention_scratch_floats(tr, q_tile, D, d_pad);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(scratch_n));
    e.forward(p, begin, end, scratch.data());
  });
  return out.permute({0, 2, 1, 3});  // [B, H, Nq, D] view
}

}  // namespace dit::kernels::cpu
