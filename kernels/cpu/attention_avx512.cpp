// Fused CPU attention, AVX-512F (16 floats per register). Compiled with -mavx512f -mavx512bw
// -mavx512vl -mfma (CMakeLists.txt); called only when the CPU reports AVX-512F
// (kernels/cpu/attention.cpp).
#include "attention_params.h"

#if defined(__x86_64__) && defined(__AVX512F__)
// GCC 12 reports its own _mm512_undefined_ps() placeholders inside the reductions and masked
// intrinsics as maybe-uninitialized (GCC bug 105593); nothing of ours is affected.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#include <math.h>

namespace dit::kernels::cpu {
namespace avx512 {

struct Vec {
  using reg = __m512;
  static constexpr int W = 16;
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg x) { _mm512_storeu_ps(p, x); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg zero() { return _mm512_setzero_ps(); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  // exp(x) = 2^n p(r), r = x - n ln 2 (Cephes expf polynomial, ~2 ulp); x <= -87.3 -> ~1e-38.
  static reg exp(reg x) {
    x = _mm512_min_ps(_mm512_max_ps(x, set1(-87.3f)), set1(88.3f));
    const reg n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(1.44269504088896341f)),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    reg r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    reg y = set1(1.9875691500e-4f);
    y = fma(y, r, set1(1.3981999507e-3f));
    y = fma(y, r, set1(8.3334519073e-3f));
    y = fma(y, r, set1(4.1665795894e-2f));
    y = fma(y, r, set1(1.6666665459e-1f));
    y = fma(y, r, set1(5.0000001201e-1f));
    y = fma(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, set1(1.f)));
    return _mm512_scalef_ps(y, n);
  }
};

constexpr int kKeyRows = 6, kDimRows = 6, kQueryVecs = 4;  // register blocks
#include "attention_impl.h"

}  // namespace avx512

AttentionTraits attention_traits_avx512() { return {avx512::Vec::W}; }
void attention_forward_avx512(const AttentionParams& p, int64_t begin, int64_t end, float* scratch) {
  avx512::run(p, begin, end, scratch);
}

}  // namespace dit::kernels::cpu

#else
namespace dit::kernels::cpu {
AttentionTraits attention_traits_avx512() { return {0}; }  // width 0: not compiled in
void attention_forward_avx512(const AttentionParams&, int64_t, int64_t, float*) {}
}  // namespace dit::kernels::cpu
#endif
