// Fused CPU attention, AVX2 + FMA (8 floats per register). Compiled with -mavx2 -mfma
// (CMakeLists.txt); called only when the CPU reports both (kernels/cpu/attention.cpp).
#include "attention_params.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <math.h>

namespace dit::kernels::cpu {
namespace avx2 {

struct Vec {
  using reg = __m256;
  static constexpr int W = 8;
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg x) { _mm256_storeu_ps(p, x); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg zero() { return _mm256_setzero_ps(); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  // exp(x) = 2^n p(r), r = x - n ln 2 (Cephes expf polynomial, ~2 ulp); x <= -87.3 -> ~1e-38.
  static reg exp(reg x) {
    x = _mm256_min_ps(_mm256_max_ps(x, set1(-87.3f)), set1(88.3f));
    const reg n = _mm256_round_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    reg r = _mm256_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    reg y = set1(1.9875691500e-4f);
    y = fma(y, r, set1(1.3981999507e-3f));
    y = fma(y, r, set1(8.3334519073e-3f));
    y = fma(y, r, set1(4.1665795894e-2f));
    y = fma(y, r, set1(1.6666665459e-1f));
    y = fma(y, r, set1(5.0000001201e-1f));
    y = fma(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, set1(1.f)));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  }
};

constexpr int kKeyRows = 6, kDimRows = 6, kQueryVecs = 2;  // register blocks
#include "attention_impl.h"

}  // namespace avx2

AttentionTraits attention_traits_avx2() { return {avx2::Vec::W}; }
void attention_forward_avx2(const AttentionParams& p, int64_t begin, int64_t end, float* scratch) {
  avx2::run(p, begin, end, scratch);
}

}  // namespace dit::kernels::cpu

#else
namespace dit::kernels::cpu {
AttentionTraits attention_traits_avx2() { return {0}; }  // width 0: not compiled in
void attention_forward_avx2(const AttentionParams&, int64_t, int64_t, float*) {}
}  // namespace dit::kernels::cpu
#endif
