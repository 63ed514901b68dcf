// Fused CPU attention, portable scalar code (one float per "register"): the fallback on CPUs
// without AVX2+FMA and on other architectures. Same algorithm and tiling as the SIMD paths.
#include "attention_params.h"

#include <math.h>

namespace dit::kernels::cpu {
namespace scalar {

struct Vec {
  using reg = float;
  static constexpr int W = 1;
  static reg load(const float* p) { return *p; }
  static void store(float* p, reg x) { *p = x; }
  static reg set1(float x) { return x; }
  static reg zero() { return 0.f; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg exp(reg x) { return expf(x); }
};

constexpr int kKeyRows = 4, kDimRows = 4, kQueryVecs = 4;  // register blocks
#include "attention_impl.h"

}  // namespace scalar

AttentionTraits attention_traits_scalar() { return {scalar::Vec::W}; }
void attention_forward_scalar(const AttentionParams& p, int64_t begin, int64_t end, float* scratch) {
  scalar::run(p, begin, end, scratch);
}

int64_t attention_scratch_floats(int64_t q_tile, int64_t key_tile, int64_t D) {
  auto up = [](int64_t x) { return (x + 15) / 16 * 16; };
  // Qt, St, Ot, m, l (attention_impl.h), then 2 key_tile row pointers (2 floats each).
  return 2 * up(q_tile * D) + up(q_tile * key_tile) + 2 * up(q_tile) + 4 * key_tile;
}

}  // namespace dit::kernels::cpu
