// PackedLinear (include/dit/linear.h): oneDNN matmul with prepacked weights and a fused epilogue.
#include <dit/error.h>
#include <dit/linear.h>
#include <fmt/format.h>

#include <iostream>
#include <map>
#include <mutex>
#include <tuple>

#if DIT_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace dit::kernels {

LinearPrecision parse_linear_precision(const std::string& name, const std::string& where) {
  if (name == "fp32" || name == "f32" || name.empty()) return LinearPrecision::kFloat32;
  if (name == "bf16") return LinearPrecision::kBF16;
  throw Error(fmt::format("{}: precision must be fp32 or bf16, got '{}'", where, name));
}

const char* precision_name(LinearPrecision p) {
  return p == LinearPrecision::kBF16 ? "bf16" : "fp32";
}

bool cpu_has_native_bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

LinearPrecision resolve_precision(LinearPrecision requested) {
  if (requested != LinearPrecision::kBF16 || cpu_has_native_bf16()) return requested;
  static std::once_flag said;
  std::call_once(said, [] {
    std::cerr << "dit: this CPU has no AVX512-BF16 (bf16 would be emulated, much slower than "
                 "fp32): running fp32\n";
  });
  return LinearPrecision::kFloat32;
}

#if DIT_HAVE_DNNL

namespace {

using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dt dnnl_type(torch::ScalarType s, const char* what) {
  if (s == torch::kFloat32) return dt::f32;
  if (s == torch::kBFloat16) return dt::bf16;
  throw Error(fmt::format("PackedLinear: {} must be float32 or bfloat16, got {}", what,
                          c10::toString(s)));
}

}  // namespace

struct PackedLinear::Impl {
  int64_t N = 0, K = 0;
  LinearPrecision precision = LinearPrecision::kFloat32;
  LinearActivation activation = LinearActivation::kNone;
  torch::Tensor weight;  // [N, K] contiguous, in the compute type (the reorder's source)
  torch::Tensor bias;    // [N] float32 contiguous
  struct Prim {
    dnnl::matmul matmul;
    dnnl::memory packed;  // weights in the layout this primitive wants
  };
  mutable std::mutex mutex;
  // (M, src row stride, src dtype, dst row stride, dst dtype) -> primitive
  mutable std::map<std::tuple<int64_t, int64_t, int, int64_t, int>, Prim> prims;
  // packed weights per layout (primitives for different M usually share one)
  mutable std::vector<std::pair<dnnl::memory::desc, dnnl::memory>> packs;

  dt compute() const { return precision == LinearPrecision::kBF16 ? dt::bf16 : dt::f32; }

  dnnl::memory pack_for(const dnnl::memory::desc& want) const {
    for (auto& [md, mem] : packs)
      if (md == want) return mem;
    auto& eng = cpu_engine();
    // weight [N, K] row-major is the matmul's weights [K, N] with strides (1, K)
    dnnl::memory::desc plain({K, N}, compute(), dnnl::memory::dims{1, K});
    dnnl::memory src(plain, eng, weight.data_ptr()), dst(want, eng);
    dnnl::stream s(eng);
    dnnl::reorder(src, dst).execute(s, src, dst);
    s.wait();
    packs.emplace_back(want, dst);
    return dst;
  }

  const Prim& prim(int64_t M, int64_t lda, dt src_t, int64_t ldc, dt dst_t) const {
    auto key = std::make_tuple(M, lda, static_cast<int>(src_t), ldc, static_cast<int>(dst_t));
    auto it = prims.find(key);
    if (it != prims.end()) return it->second;
    auto& eng = cpu_engine();
    dnnl::memory::desc a({M, K}, src_t, dnnl::memory::dims{lda, 1});
    dnnl::memory::desc w({K, N}, compute(), dnnl::memory::format_tag::any);
    dnnl::memory::desc b({1, N}, dt::f32, dnnl::memory::format_tag::ab);
    dnnl::memory::desc c({M, N}, dst_t, dnnl::memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (activation == LinearActivation::kGeluTanh) {
      dnnl::post_ops po;
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_gelu_tanh, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, w, b, c), attr, eng);
    Prim p{dnnl::matmul(pd), pack_for(pd.weights_desc())};
    return prims.emplace(key, std::move(p)).first->second;
  }
};

PackedLinear::PackedLinear(const torch::Tensor& weight, const torch::Tensor& bias,
                           LinearPrecision precision, LinearActivation activation)
    : impl_(std::make_shared<Impl>()) {
  if (weight.dim() != 2 || weight.device() != torch::kCPU || weight.scalar_type() != torch::kFloat32)
    throw Error("PackedLinear: weight must be a float32 CPU matrix [out, in]");
  if (!bias.defined() || bias.dim() != 1 || bias.size(0) != weight.size(0) ||
      bias.device() != torch::kCPU || bias.scalar_type() != torch::kFloat32)
    throw Error(fmt::format("PackedLinear: bias must be a float32 CPU vector [{}]", weight.size(0)));
  torch::NoGradGuard no_grad;
  auto& I = *impl_;
  I.N = weight.size(0), I.K = weight.size(1);
  I.precision = precision, I.activation = activation;
  I.weight = (precision == LinearPrecision::kBF16 ? weight.to(torch::kBFloat16) : weight)
                 .detach().contiguous().clone();
  I.bias = bias.detach().contiguous().clone();
}

LinearPrecision PackedLinear::precision() const { return impl_->precision; }
bool PackedLinear::available() { return true; }

void PackedLinear::run(const torch::Tensor& x_in, const torch::Tensor& out) const {
  const auto& I = *impl_;
  if (x_in.dim() != 2 || x_in.size(1) != I.K || x_in.stride(1) != 1 || x_in.device() != torch::kCPU)
    throw Error(fmt::format("PackedLinear: x must be a CPU [M, {}] matrix with unit column stride", I.K));
  const int64_t M = x_in.size(0);
  if (out.dim() != 2 || out.size(0) != M || out.size(1) != I.N || out.stride(1) != 1 ||
      out.device() != torch::kCPU)
    throw Error(fmt::format("PackedLinear: out must be a CPU [{}, {}] matrix with unit column stride",
                            M, I.N));
  if (M == 0) return;
  // bf16 products need bf16 activations: convert float32 input here.
  torch::Tensor x = x_in;
  if (I.precision == LinearPrecision::kBF16 && x.scalar_type() != torch::kBFloat16)
    x = x_in.to(torch::kBFloat16);
  const dt src_t = dnnl_type(x.scalar_type(), "x"), dst_t = dnnl_type(out.scalar_type(), "out");
  if (I.precision == LinearPrecision::kFloat32 && (src_t != dt::f32 || dst_t != dt::f32))
    throw Error("PackedLinear: an fp32 layer takes and writes float32");
  dnnl::matmul mm;
  dnnl::memory packed;
  {
    std::lock_guard<std::mutex> lock(I.mutex);
    const auto& p = I.prim(M, x.stride(0), src_t, out.stride(0), dst_t);
    mm = p.matmul, packed = p.packed;
  }
  auto& eng = cpu_engine();
  dnnl::memory a({{M, I.K}, src_t, dnnl::memory::dims{x.stride(0), 1}}, eng, x.data_ptr());
  dnnl::memory b({{1, I.N}, dt::f32, dnnl::memory::format_tag::ab}, eng, I.bias.data_ptr());
  dnnl::memory c({{M, I.N}, dst_t, dnnl::memory::dims{out.stride(0), 1}}, eng, out.data_ptr());
  dnnl::stream s(eng);
  mm.execute(s, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, packed}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, c}});
  s.wait();
}

#else  // !DIT_HAVE_DNNL

struct PackedLinear::Impl {};

PackedLinear::PackedLinear(const torch::Tensor&, const torch::Tensor&, LinearPrecision,
                           LinearActivation) {
  throw Error("PackedLinear: this build has no oneDNN (install libdnnl-dev and reconfigure)");
}
LinearPrecision PackedLinear::precision() const { return LinearPrecision::kFloat32; }
bool PackedLinear::available() { return false; }
void PackedLinear::run(const torch::Tensor&, const torch::Tensor&) const {
  throw Error("PackedLinear: this build has no oneDNN");
}

#endif

}  // namespace dit::kernels
