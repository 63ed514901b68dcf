// Fused attention forward (flash-style) for one SIMD type. Included *inside* a per-ISA
// namespace by attention_avx512.cpp / attention_avx2.cpp / attention_scalar.cpp after that file
// has defined `struct Vec` (the register type and its operations) and the register-block sizes
// kKeyRows, kDimRows, kQueryVecs, so every instantiation and every inline helper here is
// private to its translation unit and its -m flags. Uses no library templates for the same
// reason. Do not include other headers here.
//
// Transposed tiles: queries run along the SIMD lanes. One task = (batch b, head h, query tile
// of q_tile rows, a multiple of W). Per task:
//   Qt = (q[b, h, tile] * scale)^T                   [D, q_tile]    (zero columns padded)
//   for each key tile of Bc kept keys:
//     St = K[tile] Qt                                 [Bc, q_tile]   K rows read in place
//     m' = max(m, colmax St); P = exp(St - m'); l = l e^(m - m') + colsum P; Ot *= e^(m - m')
//     Ot += V[tile]^T P                               [D, q_tile]    V rows read in place
//   o[b, h, tile] = (Ot / l)^T
// (Dao et al. 2022, FlashAttention, Algorithm 1, with the rescaling of its FlashAttention-2
// variant: O is divided by l once at the end.) With queries in the lanes, the softmax's max and
// sum run down the columns (no horizontal reductions), and K and V need no packing: their
// elements are broadcast straight from the caller's tensors, through the kept-key index when a
// mask is given.

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// St[r][c-block] = sum_d K[key r][d] Qt[d][c-block] for R keys and C query vectors.
template <int R, int C>
inline void scores_block(const float* const* krow, int64_t kd_stride, const float* qt,
                         int64_t ldq, int64_t D, float* st, int64_t lds) {
  typename Vec::reg acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = Vec::zero();
  for (int64_t d = 0; d < D; ++d) {
    typename Vec::reg qv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) qv[c] = Vec::load(qt + d * ldq + c * Vec::W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto kb = Vec::set1(krow[r][d * kd_stride]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = Vec::fma(kb, qv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) Vec::store(st + r * lds + c * Vec::W, acc[r][c]);
}

// Ot[d0 + r][c-block] += sum_j V[key j][d0 + r] P[j][c-block] for R dims and C query vectors.
template <int R, int C>
inline void values_block(const float* const* vrow, int64_t vd_stride, int64_t d0,
                         const float* p, int64_t ldp, int64_t nj, float* ot, int64_t ldo) {
  typename Vec::reg acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = Vec::load(ot + (d0 + r) * ldo + c * Vec::W);
  for (int64_t j = 0; j < nj; ++j) {
    typename Vec::reg pv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) pv[c] = Vec::load(p + j * ldp + c * Vec::W);
    const float* vj = vrow[j] + d0 * vd_stride;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const auto vb = Vec::set1(vj[r * vd_stride]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = Vec::fma(vb, pv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) Vec::store(ot + (d0 + r) * ldo + c * Vec::W, acc[r][c]);
}

// Query vectors [c0, c1) of a key tile: every R-key block, then the remaining keys one by one.
template <int C>
inline void scores_cols(const float* const* krow, int64_t kd_stride, const float* qt,
                        int64_t ldq, int64_t D, int64_t nj, float* st, int64_t lds) {
  int64_t r = 0;
  for (; r + kKeyRows <= nj; r += kKeyRows)
    scores_block<kKeyRows, C>(krow + r, kd_stride, qt, ldq, D, st + r * lds, lds);
  for (; r < nj; ++r) scores_block<1, C>(krow + r, kd_stride, qt, ldq, D, st + r * lds, lds);
}

template <int C>
inline void values_cols(const float* const* vrow, int64_t vd_stride, const float* p,
                        int64_t ldp, int64_t nj, int64_t D, float* ot, int64_t ldo) {
  int64_t d = 0;
  for (; d + kDimRows <= D; d += kDimRows)
    values_block<kDimRows, C>(vrow, vd_stride, d, p, ldp, nj, ot, ldo);
  for (; d < D; ++d) values_block<1, C>(vrow, vd_stride, d, p, ldp, nj, ot, ldo);
}

// Scratch layout (attention_scratch_floats): Qt, St, Ot, m, l, then Bc key-row and Bc
// value-row pointers, each part rounded up to 16 floats.
inline void run(const AttentionParams& p, int64_t task_begin, int64_t task_end, float* scratch) {
  constexpr int W = Vec::W;
  constexpr int CQ = kQueryVecs;
  const int64_t Bc = p.key_tile, D = p.D, qt = p.q_tile, nvec = qt / W;
  const int64_t n_qtiles = (p.Nq + qt - 1) / qt;
  auto up16 = [](int64_t x) { return (x + 15) / 16 * 16; };

  float* Qt = scratch;                    // [D, qt]
  float* St = Qt + up16(D * qt);          // [Bc, qt]
  float* Ot = St + up16(Bc * qt);         // [D, qt]
  float* m = Ot + up16(D * qt);           // [qt]
  float* l = m + up16(qt);                // [qt]
  const float** krow = reinterpret_cast<const float**>(l + up16(qt));  // [Bc]
  const float** vrow = krow + Bc;                                      // [Bc]
  const int64_t kd = p.k_stride[3], vd = p.v_stride[3];

  for (int64_t task = task_begin; task < task_end; ++task) {
    const int64_t bh = task / n_qtiles, tile = task % n_qtiles;
    const int64_t b = bh / p.H, h = bh % p.H;
    const int64_t i0 = tile * qt, rows = min_i64(qt, p.Nq - i0);
    const int64_t nk = p.nk[b];
    float* out = p.o + b * p.o_stride[0] + h * p.o_stride[1] + i0 * p.o_stride[2];
    if (nk == 0) {  // every key masked: defined as 0
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t d = 0; d < D; ++d) out[r * p.o_stride[2] + d * p.o_stride[3]] = 0.f;
      continue;
    }
    const float* q = p.q + b * p.q_stride[0] + h * p.q_stride[1] + i0 * p.q_stride[2];
    // Transpose row by row: contiguous reads of q, strided writes into the L1-resident tile.
    for (int64_t i = 0; i < rows; ++i) {
      const float* qi = q + i * p.q_stride[2];
      for (int64_t d = 0; d < D; ++d) Qt[d * qt + i] = qi[d * p.q_stride[3]] * p.scale;
    }
    for (int64_t d = 0; d < D; ++d)
      for (int64_t i = rows; i < qt; ++i) Qt[d * qt + i] = 0.f;
    for (int64_t i = 0; i < D * qt; ++i) Ot[i] = 0.f;
    for (int64_t i = 0; i < qt; ++i) m[i] = -__builtin_inff(), l[i] = 0.f;

    const float* kbase = p.k + b * p.k_stride[0] + h * p.k_stride[1];
    const float* vbase = p.v + b * p.v_stride[0] + h * p.v_stride[1];
    const int64_t* index = p.key_index ? p.key_index + b * p.key_index_stride : nullptr;
    for (int64_t j0 = 0; j0 < nk; j0 += Bc) {
      const int64_t nj = min_i64(Bc, nk - j0);
      for (int64_t j = 0; j < nj; ++j) {
        const int64_t key = index ? index[j0 + j] : j0 + j;
        krow[j] = kbase + key * p.k_stride[2];
        vrow[j] = vbase + key * p.v_stride[2];
      }
      // St = K[tile] Qt
      int64_t c = 0;
      for (; c + CQ <= nvec; c += CQ) scores_cols<CQ>(krow, kd, Qt + c * W, qt, D, nj, St + c * W, qt);
      for (; c < nvec; ++c) scores_cols<1>(krow, kd, Qt + c * W, qt, D, nj, St + c * W, qt);
      // Online softmax down each column (one query per lane). m' is finite (the tile has a
      // kept key), so alpha = exp(m - m') is 0 (or ~1e-38 from the clamped SIMD exp) on the
      // first tile and no inf - inf occurs.
      for (int64_t cv = 0; cv < nvec; ++cv) {
        float* sc = St + cv * W;
        auto vmax = Vec::load(sc);
        for (int64_t j = 1; j < nj; ++j) vmax = Vec::max(vmax, Vec::load(sc + j * qt));
        const auto m_old = Vec::load(m + cv * W);
        const auto m_new = Vec::max(m_old, vmax);
        const auto alpha = Vec::exp(Vec::sub(m_old, m_new));
        auto sum = Vec::zero();
        for (int64_t j = 0; j < nj; ++j) {
          const auto e = Vec::exp(Vec::sub(Vec::load(sc + j * qt), m_new));
          Vec::store(sc + j * qt, e);
          sum = Vec::add(sum, e);
        }
        Vec::store(l + cv * W, Vec::fma(Vec::load(l + cv * W), alpha, sum));
        Vec::store(m + cv * W, m_new);
        if (j0 > 0)  // Ot is still zero on the first tile
          for (int64_t d = 0; d < D; ++d)
            Vec::store(Ot + d * qt + cv * W, Vec::mul(Vec::load(Ot + d * qt + cv * W), alpha));
      }
      // Ot += V[tile]^T P
      c = 0;
      for (; c + CQ <= nvec; c += CQ) values_cols<CQ>(vrow, vd, St + c * W, qt, nj, D, Ot + c * W, qt);
      for (; c < nvec; ++c) values_cols<1>(vrow, vd, St + c * W, qt, nj, D, Ot + c * W, qt);
    }
    for (int64_t i = 0; i < rows; ++i) {  // contiguous writes of each output row
      const float inv = 1.f / l[i];
      float* dst = out + i * p.o_stride[2];
      for (int64_t d = 0; d < D; ++d) dst[d * p.o_stride[3]] = Ot[d * qt + i] * inv;
    }
  }
}
