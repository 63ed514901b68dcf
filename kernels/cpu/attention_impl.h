// Fused attention forward (flash-style) for one SIMD type. Included *inside* a per-ISA
// namespace by attention_avx512.cpp / attention_avx2.cpp / attention_scalar.cpp after that file
// has defined `struct Vec` (the register type and its operations), so every instantiation and
// every inline helper here is private to its translation unit and its -m flags. Uses no library
// templates for the same reason. Do not include other headers here.
//
// One task = (batch b, head h, query tile of q_tile rows). Per task:
//   Qp = q[b, h, tile] * scale                       [q_tile, D]   (packed, zero rows padded)
//   for each key tile j0..j0+Bc of the kept keys:     (never more than Bc scores per row)
//     S = Qp Kt[:, tile]                              [q_tile, Bc]  register-blocked R x CK
//     m' = max(m, rowmax S); P = exp(S - m'); l = l e^(m - m') + rowsum P; O *= e^(m - m')
//     O += P V[tile]                                  [q_tile, d_pad] register-blocked R x CD
//   o[b, h, tile] = O / l
// (Dao et al. 2022, FlashAttention, Algorithm 1, with the rescaling of its FlashAttention-2
// variant: O is divided by l once at the end.)

template <int R, int C>
inline void qk_block(const float* qp, int64_t ldq, const float* kt, int64_t ldk, int64_t D,
                     float* s, int64_t lds) {
  typename Vec::reg acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = Vec::zero();
  for (int64_t d = 0; d < D; ++d) {
    typename Vec::reg kv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) kv[c] = Vec::load(kt + d * ldk + c * Vec::W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto qb = Vec::set1(qp[r * ldq + d]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = Vec::fma(qb, kv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) Vec::store(s + r * lds + c * Vec::W, acc[r][c]);
}

template <int R, int C>
inline void pv_block(const float* p, int64_t ldp, const float* vp, int64_t ldv, int64_t nj,
                     float* o, int64_t ldo) {
  typename Vec::reg acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = Vec::load(o + r * ldo + c * Vec::W);
  for (int64_t j = 0; j < nj; ++j) {
    typename Vec::reg vv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) vv[c] = Vec::load(vp + j * ldv + c * Vec::W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto pb = Vec::set1(p[r * ldp + j]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = Vec::fma(pb, vv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) Vec::store(o + r * ldo + c * Vec::W, acc[r][c]);
}

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
inline float max_f(float a, float b) { return a > b ? a : b; }

// Scratch layout: Qp, S, O, m, l, each rounded up to 16 floats (attention_scratch_floats).
inline void run(const AttentionParams& p, int64_t task_begin, int64_t task_end, float* scratch) {
  constexpr int W = Vec::W;
  constexpr int R = kRows;
  const int64_t Bc = p.key_tile;
  const int64_t D = p.D, dp = p.d_pad, qt = p.q_tile, ldk = p.nk_pad;
  const int64_t n_qtiles = (p.Nq + qt - 1) / qt;
  const float neg_inf = -__builtin_inff();

  float* Qp = scratch;                          // [qt, D]
  float* S = Qp + round_up(qt * D, 16);         // [qt, Bc]
  float* O = S + round_up(qt * Bc, 16);         // [qt, dp]
  float* m = O + round_up(qt * dp, 16);         // [qt]
  float* l = m + round_up(qt, 16);              // [qt]
  const int64_t dvec = dp / W;

  for (int64_t task = task_begin; task < task_end; ++task) {
    const int64_t bh = task / n_qtiles, tile = task % n_qtiles;
    const int64_t b = bh / p.H, h = bh % p.H;
    const int64_t i0 = tile * qt, rows = min_i64(qt, p.Nq - i0), rows_pad = round_up(rows, R);
    const int64_t nk = p.nk[b];
    float* out = p.o + b * p.o_stride[0] + h * p.o_stride[1] + i0 * p.o_stride[2];
    if (nk == 0) {  // every key masked: defined as 0
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t d = 0; d < D; ++d) out[r * p.o_stride[2] + d * p.o_stride[3]] = 0.f;
      continue;
    }
    const float* q = p.q + b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
    const auto vscale = Vec::set1(p.scale);
    for (int64_t r = 0; r < rows_pad; ++r) {
      float* qr = Qp + r * D;
      int64_t d = 0;
      if (r < rows && p.q_stride[3] == 1) {
        const float* src = q + r * p.q_stride[2];
        for (; d + W <= D; d += W) Vec::store(qr + d, Vec::mul(Vec::load(src + d), vscale));
      }
      for (; d < D; ++d)
        qr[d] = r < rows ? q[r * p.q_stride[2] + d * p.q_stride[3]] * p.scale : 0.f;
    }
    for (int64_t i = 0; i < rows_pad * dp; ++i) O[i] = 0.f;
    for (int64_t r = 0; r < rows_pad; ++r) m[r] = neg_inf, l[r] = 0.f;

    const float* kt = p.kt + bh * D * ldk;  // [D, ldk]
    const float* vp = p.vp + bh * ldk * dp;  // [ldk, dp]
    for (int64_t j0 = 0; j0 < nk; j0 += Bc) {
      const int64_t nj = min_i64(Bc, nk - j0), nvec = (nj + W - 1) / W;
      // S = Qp Kt[:, j0 : j0 + nvec W]
      for (int64_t r0 = 0; r0 < rows_pad; r0 += R) {
        int64_t c = 0;
        for (; c + kQkCols <= nvec; c += kQkCols)
          qk_block<R, kQkCols>(Qp + r0 * D, D, kt + j0 + c * W, ldk, D, S + r0 * Bc + c * W, Bc);
        for (; c < nvec; ++c)
          qk_block<R, 1>(Qp + r0 * D, D, kt + j0 + c * W, ldk, D, S + r0 * Bc + c * W, Bc);
      }
      // Online softmax, row by row.
      for (int64_t r = 0; r < rows_pad; ++r) {
        float* s = S + r * Bc;
        for (int64_t j = nj; j < nvec * W; ++j) s[j] = neg_inf;  // padding of the last tile
        auto vmax = Vec::load(s);
        for (int64_t c = 1; c < nvec; ++c) vmax = Vec::max(vmax, Vec::load(s + c * W));
        const float m_new = max_f(m[r], Vec::hmax(vmax));  // finite: the tile has a kept key
        const float alpha = expf(m[r] - m_new);            // 0 on the first tile
        const auto vm = Vec::set1(m_new);
        auto vsum = Vec::zero();
        for (int64_t c = 0; c < nvec; ++c) {
          const auto e = Vec::exp(Vec::sub(Vec::load(s + c * W), vm));
          Vec::store(s + c * W, e);
          vsum = Vec::add(vsum, e);
        }
        l[r] = l[r] * alpha + Vec::hsum(vsum);
        m[r] = m_new;
        if (alpha != 1.f) {
          const auto va = Vec::set1(alpha);
          float* orow = O + r * dp;
          for (int64_t c = 0; c < dvec; ++c)
            Vec::store(orow + c * W, Vec::mul(Vec::load(orow + c * W), va));
        }
      }
      // O += P V[j0 : j0 + nj]
      const float* vt = vp + j0 * dp;
      for (int64_t r0 = 0; r0 < rows_pad; r0 += R) {
        const float* pr = S + r0 * Bc;
        float* orow = O + r0 * dp;
        int64_t c = 0;
        for (; c + kPvCols <= dvec; c += kPvCols)
          pv_block<R, kPvCols>(pr, Bc, vt + c * W, dp, nj, orow + c * W, dp);
        switch (dvec - c) {
          case 0: break;
          case 1: pv_block<R, 1>(pr, Bc, vt + c * W, dp, nj, orow + c * W, dp); break;
          case 2: pv_block<R, 2>(pr, Bc, vt + c * W, dp, nj, orow + c * W, dp); break;
          default:
            for (; c < dvec; ++c) pv_block<R, 1>(pr, Bc, vt + c * W, dp, nj, orow + c * W, dp);
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.f / l[r];
      float* dst = out + r * p.o_stride[2];
      int64_t d = 0;
      if (p.o_stride[3] == 1) {
        const auto vinv = Vec::set1(inv);
        for (; d + W <= D; d += W) Vec::store(dst + d, Vec::mul(Vec::load(O + r * dp + d), vinv));
      }
      for (; d < D; ++d) dst[d * p.o_stride[3]] = O[r * dp + d] * inv;
    }
  }
}
