// dit-cuda-emulated-check: the kernels' own code (attention_kernel.cuh, adaln_kernel.cuh)
// compiled for the CPU and run on emulated CTAs (sm80_emulated.h) against the double-precision
// references of dit-cuda-selftest: attention for every head dim, dtype and tile configuration,
// adaLN and the gated residual for every dtype and both access widths. It checks what needs no
// GPU: index arithmetic, the fragment bookkeeping between the kernel's loads, mma calls and
// softmax, masking and bounds, and the cp.async / barrier protocol (each attention case runs
// with copies landing when issued and when waited for). The instruction semantics are the
// emulator's reading of the PTX ISA, so dit-cuda-selftest on a GPU remains the final word.
//   dit-cuda-emulated-check [--quick]      exit 0 pass, 1 fail
#define DIT_CUDA_EMULATION
#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "adaln_kernel.cuh"
#include "adaln_reference.h"
#include "attention_kernel.cuh"
#include "attention_reference.h"

namespace dit::kernels::cuda::attention_detail {
// The kernel's `extern __shared__ uint4 smem_storage[]`, as large as attention_kernel.cuh lets a
// configuration ask for; one block runs at a time.
uint4 smem_storage[163 * 1024 / 16];
}  // namespace dit::kernels::cuda::attention_detail

namespace {

using namespace dit::kernels::cuda;
using namespace dit::kernels::cuda::reference;
namespace emu = dit::kernels::cuda::emulation;

// ---- attention ----------------------------------------------------------------------------------

// Every CTA of the grid, one after the other, on a shared memory full of NaNs (0xffff).
template <class Traits, CudaDtype kDtype>
void emulate_grid(const AttentionCudaParams& p) {
  emu::g_shared = {reinterpret_cast<unsigned char*>(attention_detail::smem_storage),
                   static_cast<size_t>(Traits::kSmemBytes)};
  const unsigned q_tiles = (p.nq + Traits::kBlockM - 1) / Traits::kBlockM;
  for (unsigned b = 0; b < static_cast<unsigned>(p.batch); ++b)
    for (unsigned h = 0; h < static_cast<unsigned>(p.heads); ++h)
      for (unsigned t = 0; t < q_tiles; ++t) {
        memset(emu::g_shared.base, 0xff, emu::g_shared.bytes);
        emu::run_block(uint3{t, h, b}, Traits::kThreads,
                       [&] { attention_detail::attention_fwd_kernel<Traits, kDtype>(p); });
      }
}

using GridEmulator = void (*)(const AttentionCudaParams&);

template <CudaDtype kDtype, int kHeadDim, int... kConfigs>
std::array<GridEmulator, kAttentionConfigCount> emulators(std::integer_sequence<int, kConfigs...>) {
  return {&emulate_grid<AttentionTraitsFor<kHeadDim, kConfigs>, kDtype>...};
}

template <CudaDtype kDtype, int kHeadDim>
GridEmulator emulator_for(int config) {
  static const auto table =
      emulators<kDtype, kHeadDim>(std::make_integer_sequence<int, kAttentionConfigCount>{});
  return table[config];
}

GridEmulator emulator_for(CudaDtype dtype, int head_dim, int config) {
  const bool bf16 = dtype == CudaDtype::kBFloat16;
  constexpr CudaDtype kBf16 = CudaDtype::kBFloat16, kFp16 = CudaDtype::kFloat16;
  switch (head_dim) {
    case 64: return bf16 ? emulator_for<kBf16, 64>(config) : emulator_for<kFp16, 64>(config);
    case 72: return bf16 ? emulator_for<kBf16, 72>(config) : emulator_for<kFp16, 72>(config);
    case 96: return bf16 ? emulator_for<kBf16, 96>(config) : emulator_for<kFp16, 96>(config);
    case 128: return bf16 ? emulator_for<kBf16, 128>(config) : emulator_for<kFp16, 128>(config);
  }
  return nullptr;
}

// err/tol of one case with one configuration and copy timing.
double run_case(const AttentionCase& c, const AttentionInputs& in, const std::vector<double>& ref,
                int config, emu::CopyTiming timing) {
  constexpr int64_t kGuard = 64;
  PackedAttention packed = pack_attention(c, in);
  std::vector<uint16_t> out(packed.out_elems + kGuard, 0xffff);
  emu::g_global = {{reinterpret_cast<unsigned char*>(packed.qkv.data()), packed.qkv.size() * 2}};
  emu::g_copy_timing = timing;
  const AttentionCudaParams p = packed.params(
      c, packed.qkv.data(), packed.mask.empty() ? nullptr : packed.mask.data(), out.data());
  if (const char* why = attention_cuda_unsupported(p, config)) {
    std::printf("  unsupported: %s\n", why);
    return INFINITY;
  }
  emulator_for(c.dtype, c.head_dim, config)(p);
  return compare_attention_output(c, ref, out, kGuard).ratio(attention_tolerance(c.dtype));
}

// ---- adaLN --------------------------------------------------------------------------------------

// The launch of adaln.cu: blocks of kWarpsPerBlock rows, 16-byte accesses where they fit.
template <typename T, class Params, class Kernel16, class Kernel1>
void emulate_rowwise(const Params& p, Kernel16 kernel16, Kernel1 kernel1) {
  const unsigned blocks = adaln_detail::blocks_for(p.batch * p.tokens);
  const bool wide = adaln_detail::vectorised<T>(p);
  for (unsigned block = 0; block < blocks; ++block)
    emu::run_block(uint3{block, 0, 0}, adaln_detail::kThreads,
                   [&] { wide ? kernel16(p) : kernel1(p); });
}

template <typename T>
void emulate_adaln(const AdaLNCudaParams& p) {
  emulate_rowwise<T>(p, adaln_detail::adaln_modulate_kernel<T, 16 / sizeof(T)>,
                     adaln_detail::adaln_modulate_kernel<T, 1>);
}

template <typename T>
void emulate_gate(const GateResidualCudaParams& p) {
  emulate_rowwise<T>(p, adaln_detail::gate_residual_kernel<T, 16 / sizeof(T)>,
                     adaln_detail::gate_residual_kernel<T, 1>);
}

// err/tol of adaln_modulate and of gate_residual on one case.
std::array<double, 2> run_rowwise_case(const RowwiseCase& c, uint32_t seed) {
  const RowwiseInputs in = make_rowwise_inputs(c, seed);
  RowwiseBuffers buffers = rowwise_buffers(c, in);
  std::vector<unsigned char> out(c.rows() * c.dim * dtype_bytes(c.dtype));
  const AdaLNCudaParams a =
      adaln_params_for(c, buffers.x.data(), buffers.modulation.data(), out.data());
  if (adaln_modulate_cuda_unsupported(a) != nullptr) return {INFINITY, INFINITY};
  switch (c.dtype) {
    case CudaDtype::kFloat32: emulate_adaln<float>(a); break;
    case CudaDtype::kBFloat16: emulate_adaln<__nv_bfloat16>(a); break;
    case CudaDtype::kFloat16: emulate_adaln<__half>(a); break;
  }
  const Comparison adaln =
      c.in_place ? compare_rowwise(c, reference_adaln_modulate(c, in), buffers.x, c.x_offset)
                 : compare_rowwise(c, reference_adaln_modulate(c, in), out, 0);

  buffers = rowwise_buffers(c, in);  // x again, unmodulated
  const GateResidualCudaParams g =
      gate_params_for(c, buffers.x.data(), buffers.y.data(), buffers.modulation.data());
  if (gate_residual_cuda_unsupported(g) != nullptr) return {INFINITY, INFINITY};
  switch (c.dtype) {
    case CudaDtype::kFloat32: emulate_gate<float>(g); break;
    case CudaDtype::kBFloat16: emulate_gate<__nv_bfloat16>(g); break;
    case CudaDtype::kFloat16: emulate_gate<__half>(g); break;
  }
  const Comparison gate = compare_rowwise(c, reference_gate_residual(c, in), buffers.x, c.x_offset);
  return {adaln.ratio(adaln_tolerance(c.dtype)), gate.ratio(gate_residual_tolerance(c.dtype))};
}

bool check_rowwise() {
  bool ok = true;
  uint32_t seed = 100;
  for (CudaDtype dtype : {CudaDtype::kFloat32, CudaDtype::kBFloat16, CudaDtype::kFloat16}) {
    double worst = 0;
    int failures = 0;
    const std::vector<RowwiseCase> cases = rowwise_cases(dtype);
    for (const RowwiseCase& c : cases) {
      const std::array<double, 2> ratios = run_rowwise_case(c, seed++);
      for (int op = 0; op < 2; ++op) {
        worst = std::max(worst, ratios[op]);
        if (!(ratios[op] <= 1.0)) {
          ++failures;
          std::printf("  FAIL %s %s: err/tol %.3g\n", op == 0 ? "adaln_modulate" : "gate_residual",
                      c.describe().c_str(), ratios[op]);
        }
      }
    }
    std::printf("emulated adaln_modulate + gate_residual %s %3d runs  worst err/tol %.3f  %s\n",
                dtype_name(dtype), static_cast<int>(2 * cases.size()), worst,
                failures == 0 ? "ok" : "FAIL");
    ok &= failures == 0;
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc == 2 && std::string(argv[1]) == "--quick";
  if (argc > 2 || (argc == 2 && !quick)) {
    std::fprintf(stderr, "usage: dit-cuda-emulated-check [--quick]\n");
    return 2;
  }
  // Partial query and key tiles, several of each, every mask kind and layout; --quick (CI)
  // keeps the first two, and fp16 only at D = 72 (the dtypes share every code path but the
  // conversions).
  std::vector<AttentionCase> shapes = {
      {2, 2, 33, 100, 0, CudaDtype::kBFloat16, MaskKind::kHalf, Layout::kTokenMajor},
      {1, 2, 130, 7, 0, CudaDtype::kBFloat16, MaskKind::kFew, Layout::kPaddedRows},
      {1, 1, 1, 1, 0, CudaDtype::kBFloat16, MaskKind::kNone, Layout::kPaddedRows},
      {2, 1, 65, 65, 0, CudaDtype::kBFloat16, MaskKind::kFirstBatchMasked, Layout::kPackedQkv},
      {1, 1, 16, 200, 0, CudaDtype::kBFloat16, MaskKind::kNone, Layout::kTokenMajor, 8.f, 0.3f},
  };
  if (quick) shapes.resize(2);
  bool ok = true;
  uint32_t seed = 1;
  for (CudaDtype dtype : {CudaDtype::kBFloat16, CudaDtype::kFloat16})
    for (int head_dim : kAttentionHeadDims) {
      if (quick && dtype == CudaDtype::kFloat16 && head_dim != 72) continue;
      double worst = 0;
      int runs = 0, failures = 0;
      for (AttentionCase c : shapes) {
        c.dtype = dtype;
        c.head_dim = head_dim;
        const AttentionInputs in = make_attention_inputs(c, seed++);
        const std::vector<double> ref = reference_attention(c, in);
        for (int config = 0; config < attention_cuda_config_count(head_dim); ++config)
          for (emu::CopyTiming timing : {emu::CopyTiming::kAtIssue, emu::CopyTiming::kAtWait}) {
            const double ratio = run_case(c, in, ref, config, timing);
            ++runs;
            worst = std::max(worst, ratio);
            if (!(ratio <= 1.0)) {
              ++failures;
              std::printf("  FAIL %s, config %s, copies %s: err/tol %.3g\n", c.describe().c_str(),
                          attention_cuda_config_name(head_dim, config),
                          timing == emu::CopyTiming::kAtIssue ? "at issue" : "at wait", ratio);
            }
          }
      }
      std::printf("emulated attention %s D=%-3d %3d runs  worst err/tol %.3f  %s\n",
                  dtype_name(dtype), head_dim, runs, worst, failures == 0 ? "ok" : "FAIL");
      std::fflush(stdout);
      ok &= failures == 0;
    }
  ok &= check_rowwise();
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
