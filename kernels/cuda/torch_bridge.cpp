// The "cuda" kernel backend: fills the raw kernels' parameter structs (attention_params.h,
// adaln_params.h) from CUDA tensors, launches on torch's current stream, picks the attention
// configuration per shape bucket through the autotuning cache, and registers itself with the
// dispatcher (kernels/device_backends.h). Compiled into libdit only against a CUDA build of
// torch (CMakeLists.txt, CUDA section); the .cu files never see torch headers.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <dit/error.h>
#include <dit/kernels.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernels/autotune.h"
#include "kernels/cuda/adaln_params.h"
#include "kernels/cuda/attention_params.h"
#include "kernels/device_backends.h"

namespace dit::kernels::cuda {

namespace {

std::optional<CudaDtype> cuda_dtype(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return CudaDtype::kFloat32;
    case torch::kBFloat16: return CudaDtype::kBFloat16;
    case torch::kFloat16: return CudaDtype::kFloat16;
    default: return std::nullopt;
  }
}

void check_launch(cudaError_t err, const char* op) {
  if (err != cudaSuccess)
    throw Error(fmt::format("kernels::{} (cuda): {}", op, cudaGetErrorString(err)));
}

bool have_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

// "cuda:<name> sm<major><minor>": the first part of the autotuning keys of this device.
std::string device_key(int index) {
  static std::mutex mutex;
  static std::map<int, std::string> names;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = names.find(index);
  if (it != names.end()) return it->second;
  cudaDeviceProp prop{};
  check_launch(cudaGetDeviceProperties(&prop, index), "device properties");
  return names[index] = fmt::format("cuda:{} sm{}{}", prop.name, prop.major, prop.minor);
}

int64_t pow2_bucket(int64_t n) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return b;
}

bool same_device_and_dtype(std::initializer_list<const torch::Tensor*> ts) {
  const torch::Tensor& first = *ts.begin()[0];
  for (const auto* t : ts)
    if (t->device() != first.device() || t->scalar_type() != first.scalar_type()) return false;
  return true;
}

// ---- attention ------------------------------------------------------------------------------

const char* attention_unsupported(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v) {
  if (!same_device_and_dtype({&q, &k, &v})) return "q, k and v must share one device and dtype";
  const auto dt = cuda_dtype(q);
  if (!dt || *dt == CudaDtype::kFloat32) return "attention takes bf16 or fp16 tensors";
  if (attention_cuda_config_count(static_cast<int>(q.size(3))) == 0)
    return "attention takes head dims 64, 72, 96 and 128";
  if (q.size(0) > 65535 || q.size(1) > 65535) return "batch and heads must be at most 65535";
  return nullptr;
}

// The kernel reads rows in 16-byte pieces: unit stride along the head dim, every other stride
// a multiple of 8 elements, 16-byte aligned data. Views into a qkv projection [B, N, 3, H, Dh]
// qualify as they are; anything else is copied once.
torch::Tensor kernel_layout(const torch::Tensor& t) {
  bool ok = t.stride(3) == 1 && reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
  for (int i = 0; i < 3; ++i) ok = ok && t.stride(i) % 8 == 0;
  return ok ? t : t.contiguous();
}

void fill_strides(int64_t (&dst)[3], const torch::Tensor& t) {
  for (int i = 0; i < 3; ++i) dst[i] = t.stride(i);
}

// The configuration for these parameters: the cached choice for this device and shape bucket,
// else a timed search over every configuration on these very inputs (skipped while the stream
// is being captured into a CUDA graph, where synchronising is not allowed: configuration 0
// then, until an uncaptured call has tuned the bucket).
int attention_config(const AttentionCudaParams& p, int device, cudaStream_t stream) {
  const int count = attention_cuda_config_count(p.head_dim);
  if (count <= 1 || !autotune_enabled()) return 0;
  const std::string key =
      fmt::format("{}|attention|config|{}|d{}|nk{}|nq{}|bh{}", device_key(device),
                  dtype_name(p.dtype), p.head_dim, pow2_bucket(p.nk), pow2_bucket(p.nq),
                  pow2_bucket(int64_t{p.batch} * p.heads));
  auto index_of = [&](const nlohmann::json& name) -> int {
    if (!name.is_string()) return -1;
    for (int c = 0; c < count; ++c)
      if (name.get<std::string>() == attention_cuda_config_name(p.head_dim, c)) return c;
    return -1;
  };
  const auto hit = autotune::lookup(key);
  if (hit) {
    const int c = index_of(*hit);
    if (c >= 0 && !attention_cuda_unsupported(p, c)) return c;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check_launch(cudaStreamIsCapturing(stream, &capture), "attention");
  if (capture != cudaStreamCaptureStatusNone) return 0;

  std::vector<int> configs;
  std::vector<std::function<void()>> runs;
  for (int c = 0; c < count; ++c) {
    if (attention_cuda_unsupported(p, c)) continue;
    configs.push_back(c);
    runs.push_back([&p, c, stream] {
      check_launch(attention_forward_cuda(p, c, stream), "attention");
      check_launch(cudaStreamSynchronize(stream), "attention");
    });
  }
  if (configs.empty()) return 0;
  const auto ms = autotune::time_candidates_ms(runs, 20.0);
  size_t best = 0;
  for (size_t i = 1; i < ms.size(); ++i)
    if (ms[i] < ms[best]) best = i;
  // First answer written wins (as for the CPU tiles), unless the cached one was unusable.
  const int in_force = index_of(autotune::remember(
      key, attention_cuda_config_name(p.head_dim, configs[best]), /*overwrite=*/hit.has_value()));
  return in_force >= 0 && !attention_cuda_unsupported(p, in_force) ? in_force : configs[best];
}

torch::Tensor attention(const torch::Tensor& q_in, const torch::Tensor& k_in,
                        const torch::Tensor& v_in, const AttentionOptions& opts) {
  const c10::cuda::CUDAGuard guard(q_in.device());
  const auto q = kernel_layout(q_in), k = kernel_layout(k_in), v = kernel_layout(v_in);
  const int64_t B = q.size(0), H = q.size(1), Nq = q.size(2), Nk = k.size(2), D = q.size(3);
  auto out = torch::empty({B, Nq, H, D}, q.options());  // [B, Nq, H, Dh]
  torch::Tensor mask;                                   // [B, Nk] uint8, nonzero = keep
  AttentionCudaParams p;
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  fill_strides(p.q_stride, q);
  fill_strides(p.k_stride, k);
  fill_strides(p.v_stride, v);
  if (opts.key_mask) {
    mask = opts.key_mask->to(q.device(), torch::kUInt8).contiguous();
    p.key_mask = mask.data_ptr<uint8_t>();
    p.key_mask_batch_stride = mask.stride(0);
  }
  p.batch = static_cast<int>(B);
  p.heads = static_cast<int>(H);
  p.nq = static_cast<int>(Nq);
  p.nk = static_cast<int>(Nk);
  p.head_dim = static_cast<int>(D);
  p.softmax_scale =
      static_cast<float>(opts.scale.value_or(1.0 / std::sqrt(static_cast<double>(D))));
  p.dtype = *cuda_dtype(q);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(q.device().index()).stream();
  const int config = attention_config(p, q.device().index(), stream);
  if (const char* why = attention_cuda_unsupported(p, config))
    throw Error(fmt::format("kernels::attention (cuda): {}", why));
  check_launch(attention_forward_cuda(p, config, stream), "attention");
  return out.permute({0, 2, 1, 3});  // [B, H, Nq, Dh] view
}

// ---- adaLN ----------------------------------------------------------------------------------

bool adaln_layernorm_out(const torch::Tensor& out, const torch::Tensor& x,
                         const torch::Tensor& shift, const torch::Tensor& scale) {
  if (adaln_layout_unsupported(out, x, shift, scale) || !cuda_dtype(x)) return false;  // device_backends.h
  AdaLNCudaParams p;
  p.x = x.data_ptr();
  p.shift = shift.data_ptr();
  p.scale = scale.data_ptr();
  p.out = out.data_ptr();
  p.shift_batch_stride = shift.stride(0);
  p.scale_batch_stride = scale.stride(0);
  p.batch = x.size(0);
  p.tokens = x.size(1);
  p.dim = x.size(2);
  p.eps = 1e-6f;
  p.dtype = *cuda_dtype(x);
  if (adaln_modulate_cuda_unsupported(p)) return false;
  const c10::cuda::CUDAGuard guard(x.device());
  check_launch(adaln_modulate_cuda(p, c10::cuda::getCurrentCUDAStream().stream()),
               "adaln_layernorm_out");
  return true;
}

bool gate_residual_(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& y_in) {
  if (gate_residual_layout_unsupported(x, gate, y_in) || !cuda_dtype(x)) return false;
  const auto y = y_in.contiguous();
  GateResidualCudaParams p;
  p.x = x.data_ptr();
  p.gate = gate.data_ptr();
  p.y = y.data_ptr();
  p.gate_batch_stride = gate.stride(0);
  p.batch = x.size(0);
  p.tokens = x.size(1);
  p.dim = x.size(2);
  p.dtype = *cuda_dtype(x);
  if (gate_residual_cuda_unsupported(p)) return false;
  const c10::cuda::CUDAGuard guard(x.device());
  check_launch(gate_residual_cuda(p, c10::cuda::getCurrentCUDAStream().stream()),
               "gate_residual_");
  return true;
}

const bool registered_torch_bridge = register_device_backend(DeviceBackend{
    "cuda", c10::DeviceType::CUDA, have_gpu, attention_unsupported, attention,
    adaln_layernorm_out, gate_residual_});

}  // namespace

}  // namespace dit::kernels::cuda
