// dit-cuda-selftest: the raw CUDA kernels (attention_params.h, adaln_params.h) against
// double-precision host references, and their speed. Needs only the CUDA runtime (no torch, no
// gtest), so a GPU machine without the engine's dependencies runs it (scripts/device/check.sh).
//
//   dit-cuda-selftest check [--quick]    one line per group, then PASS or FAIL;
//                                        exit 0 pass, 1 fail, 77 no usable CUDA device
//   dit-cuda-selftest bench [--json FILE]
//
// Check tolerances (max |gpu - ref| over a case <= tol * max(1, max |ref|), the reference
// computed in double from the same rounded inputs the GPU sees):
//   attention bf16 2e-2, fp16 5e-3 (attention_reference.h);
//   adaln_modulate fp32 1e-4, bf16 1e-2, fp16 2e-3; gate_residual fp32 1e-5, bf16 1e-2,
//     fp16 2e-3 (adaln_reference.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "adaln_params.h"
#include "adaln_reference.h"
#include "attention_params.h"
#include "attention_reference.h"

namespace {

using namespace dit::kernels::cuda;
using namespace dit::kernels::cuda::reference;

constexpr int kSkipped = 77;  // ctest SKIP_RETURN_CODE

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    check_cuda(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)), "cudaMalloc");
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  void upload(const void* host) {
    check_cuda(cudaMemcpy(ptr_, host, bytes_, cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  void download(void* host) const {
    check_cuda(cudaMemcpy(host, ptr_, bytes_, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

// One line per group: cases, kernel runs, worst err/tol.
struct Group {
  std::string title;
  int cases = 0, runs = 0, failures = 0;
  double worst_ratio = 0;

  void record(double ratio, const std::string& what) {
    ++runs;
    worst_ratio = std::max(worst_ratio, ratio);
    if (!(ratio <= 1.0)) {
      if (failures < 5) std::printf("  FAIL %s: err/tol %.3g\n", what.c_str(), ratio);
      ++failures;
    }
  }
  bool report() const {
    std::printf("%-58s %4d cases %5d runs  worst err/tol %.3f  %s\n", title.c_str(), cases, runs,
                worst_ratio, failures == 0 ? "ok" : "FAIL");
    std::fflush(stdout);
    return failures == 0;
  }
};

// ---- attention ----------------------------------------------------------------------------------

// One case in device memory (pack_attention's buffers) with an output followed by a guard.
class DeviceAttention {
 public:
  static constexpr int64_t kGuard = 64;

  DeviceAttention(const AttentionCase& c, const AttentionInputs& in)
      : c_(c),
        packed_(pack_attention(c, in)),
        qkv_(packed_.qkv.size() * 2),
        mask_(packed_.mask.size()),
        out_((packed_.out_elems + kGuard) * 2) {
    qkv_.upload(packed_.qkv.data());
    if (!packed_.mask.empty()) mask_.upload(packed_.mask.data());
  }

  AttentionCudaParams params() const {
    return packed_.params(c_, qkv_.as<void>(), packed_.mask.empty() ? nullptr : mask_.as<uint8_t>(),
                          out_.as<void>());
  }

  // One configuration on an output of NaNs (0xffff), compared with the reference.
  Comparison run(int config, const std::vector<double>& ref) {
    const int64_t elems = packed_.out_elems + kGuard;
    check_cuda(cudaMemset(out_.as<void>(), 0xff, elems * 2), "cudaMemset");
    check_cuda(attention_forward_cuda(params(), config, nullptr), "attention_forward_cuda");
    check_cuda(cudaDeviceSynchronize(), "attention kernel");
    std::vector<uint16_t> got(elems);
    out_.download(got.data());
    return compare_attention_output(c_, ref, got, kGuard);
  }

 private:
  AttentionCase c_;
  PackedAttention packed_;
  DeviceBuffer qkv_, mask_, out_;
};

bool check_attention_group(const std::string& title, const std::vector<AttentionCase>& cases) {
  Group group{title};
  uint32_t seed = 1;
  for (const auto& c : cases) {
    const AttentionInputs in = make_attention_inputs(c, seed++);
    const std::vector<double> ref = reference_attention(c, in);
    DeviceAttention device(c, in);
    ++group.cases;
    for (int config = 0; config < attention_cuda_config_count(c.head_dim); ++config) {
      const Comparison cmp = device.run(config, ref);
      group.record(cmp.ratio(attention_tolerance(c.dtype)),
                   c.describe() + ", config " + attention_cuda_config_name(c.head_dim, config) +
                       (cmp.finite ? "" : ", non-finite output or guard overwritten") +
                       ", worst at output element " + std::to_string(cmp.worst));
    }
  }
  return group.report();
}

// The API's own promises: config names, and refusals that name what is wrong.
bool check_attention_api() {
  Group group{"attention api: config names, refusals"};
  auto expect = [&](bool ok, const std::string& what) { group.record(ok ? 0.0 : INFINITY, what); };
  for (int d : {64, 72, 96, 128}) {
    ++group.cases;
    expect(attention_cuda_config_count(d) >= 2, "at least two configs for D=" + std::to_string(d));
    for (int config = 0; config < attention_cuda_config_count(d); ++config)
      expect(attention_cuda_config_name(d, config) != nullptr, "a name for every config");
    expect(attention_cuda_config_name(d, attention_cuda_config_count(d)) == nullptr,
           "no name past the last config");
  }
  expect(attention_cuda_config_count(80) == 0, "no configs for D=80");

  AttentionCase c{2, 3, 7, 9, 72, CudaDtype::kBFloat16};
  DeviceAttention device(c, make_attention_inputs(c, 7));
  const AttentionCudaParams good = device.params();
  ++group.cases;
  expect(attention_cuda_unsupported(good, 0) == nullptr, "valid parameters accepted");
  auto refused = [&](AttentionCudaParams p, int config, const char* what) {
    expect(attention_cuda_unsupported(p, config) != nullptr &&
               attention_forward_cuda(p, config, nullptr) == cudaErrorInvalidValue,
           std::string("refuses ") + what);
  };
  AttentionCudaParams p = good;
  p.head_dim = 80;
  refused(p, 0, "head_dim 80");
  refused(good, attention_cuda_config_count(72), "a config past the last");
  p = good;
  p.dtype = CudaDtype::kFloat32;
  refused(p, 0, "fp32");
  p = good;
  p.k_stride[2] += 4;
  refused(p, 0, "a row stride that is not a multiple of 8");
  p = good;
  p.q = static_cast<const uint16_t*>(good.q) + 4;
  refused(p, 0, "a q pointer that is not 16-byte aligned");
  p = good;
  p.out = nullptr;
  refused(p, 0, "a null out");
  p = good;
  p.nq = 0;
  expect(attention_forward_cuda(p, 0, nullptr) == cudaSuccess, "nq = 0 is a no-op");
  check_cuda(cudaDeviceSynchronize(), "attention api checks");
  return group.report();
}

std::vector<int> sequence_lengths(bool quick) {
  if (quick) return {1, 7, 65};
  return {1, 7, 64, 65, 257, 1000};
}

bool check_attention(bool quick) {
  bool ok = check_attention_api();
  const int batch_heads[4][2] = {{1, 1}, {2, 3}, {1, 3}, {2, 1}};
  const std::vector<int> lengths = sequence_lengths(quick);
  for (CudaDtype dtype : {CudaDtype::kBFloat16, CudaDtype::kFloat16}) {
    for (int D : {64, 72, 96, 128}) {
      const std::string prefix =
          std::string("attention ") + dtype_name(dtype) + " D=" + std::to_string(D) + " ";
      // Every (Nq, Nk); batch and heads cycle through {1, 2} x {1, 3}.
      std::vector<AttentionCase> cases;
      int n = 0;
      for (int nq : lengths)
        for (int nk : lengths) {
          AttentionCase c{batch_heads[n % 4][0], batch_heads[n % 4][1], nq, nk, D, dtype};
          c.layout = nq == nk && n % 2 == 0   ? Layout::kPackedQkv
                     : nq != nk && n % 2 == 0 ? Layout::kTokenMajor
                                              : Layout::kPaddedRows;
          cases.push_back(c);
          ++n;
        }
      ok &= check_attention_group(prefix + "shapes, no mask", cases);

      // Key-padding masks over every Nk.
      cases.clear();
      const int nq = quick ? 7 : 65;
      for (MaskKind mask : {MaskKind::kHalf, MaskKind::kFew, MaskKind::kFirstBatchMasked})
        for (int nk : lengths) {
          AttentionCase c{2, 3, nq, nk, D, dtype, mask};
          c.layout = nq == nk ? Layout::kPackedQkv : Layout::kTokenMajor;
          cases.push_back(c);
        }
      ok &= check_attention_group(prefix + "key masks", cases);

      // Sharp softmax with a custom scale: q in [-8, 8] and scale 0.3 give scores with a standard
      // deviation of 0.3 sqrt(64/9 D), 6 to 9, so the running max changes between key tiles
      // and the rescaling of O and l is exercised.
      cases.clear();
      const int long_keys = quick ? 65 : 1000;
      for (MaskKind mask : {MaskKind::kNone, MaskKind::kHalf}) {
        AttentionCase c{2, 1, 64, long_keys, D, dtype, mask, Layout::kTokenMajor, 8.f, 0.3f};
        cases.push_back(c);
        c.nq = c.nk = quick ? 65 : 257;
        c.layout = Layout::kPackedQkv;
        cases.push_back(c);
      }
      ok &= check_attention_group(prefix + "sharp softmax, scale 0.3", cases);
    }
  }
  return ok;
}

// ---- adaLN --------------------------------------------------------------------------------------

// One row-wise case on the GPU: the inputs' buffers, the kernel, the result's bytes.
struct DeviceRowwise {
  RowwiseBuffers host;
  DeviceBuffer x, y, modulation, out;

  DeviceRowwise(const RowwiseCase& c, const RowwiseInputs& in)
      : host(rowwise_buffers(c, in)),
        x(host.x.size()),
        y(host.y.size()),
        modulation(host.modulation.size()),
        out(c.rows() * c.dim * dtype_bytes(c.dtype)) {
    x.upload(host.x.data());
    y.upload(host.y.data());
    modulation.upload(host.modulation.data());
  }
};

std::vector<unsigned char> download(const DeviceBuffer& buffer) {
  std::vector<unsigned char> bytes(buffer.bytes());
  buffer.download(bytes.data());
  return bytes;
}

bool check_adaln(CudaDtype dtype) {
  Group group{std::string("adaln_modulate ") + dtype_name(dtype)};
  uint32_t seed = 11;
  for (const RowwiseCase& c : rowwise_cases(dtype)) {
    const RowwiseInputs in = make_rowwise_inputs(c, seed++);
    DeviceRowwise device(c, in);
    check_cuda(
        adaln_modulate_cuda(adaln_params_for(c, device.x.as<void>(), device.modulation.as<void>(),
                                             device.out.as<void>()),
                            nullptr),
        "adaln_modulate_cuda");
    check_cuda(cudaDeviceSynchronize(), "adaln kernel");
    const Comparison cmp =
        c.in_place
            ? compare_rowwise(c, reference_adaln_modulate(c, in), download(device.x), c.x_offset)
            : compare_rowwise(c, reference_adaln_modulate(c, in), download(device.out), 0);
    ++group.cases;
    group.record(cmp.ratio(adaln_tolerance(dtype)), c.describe());
  }
  return group.report();
}

bool check_gate_residual(CudaDtype dtype) {
  Group group{std::string("gate_residual ") + dtype_name(dtype)};
  uint32_t seed = 21;
  for (const RowwiseCase& c : rowwise_cases(dtype)) {
    const RowwiseInputs in = make_rowwise_inputs(c, seed++);
    DeviceRowwise device(c, in);
    check_cuda(gate_residual_cuda(gate_params_for(c, device.x.as<void>(), device.y.as<void>(),
                                                  device.modulation.as<void>()),
                                  nullptr),
               "gate_residual_cuda");
    check_cuda(cudaDeviceSynchronize(), "gate_residual kernel");
    const Comparison cmp =
        compare_rowwise(c, reference_gate_residual(c, in), download(device.x), c.x_offset);
    ++group.cases;
    group.record(cmp.ratio(gate_residual_tolerance(dtype)), c.describe());
  }
  return group.report();
}

int run_check(bool quick) {
  bool ok = check_attention(quick);
  for (CudaDtype dtype : {CudaDtype::kFloat32, CudaDtype::kBFloat16, CudaDtype::kFloat16}) {
    ok &= check_adaln(dtype);
    ok &= check_gate_residual(dtype);
  }
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

// ---- bench --------------------------------------------------------------------------------------

__device__ float hash_uniform(int64_t i, uint32_t seed) {  // in [-1, 1)
  uint64_t z = static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull + seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.f / 16777216.f) - 1.f;
}

template <class T>
__global__ void fill_uniform(T* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float x = hash_uniform(i, seed);
    if constexpr (std::is_same_v<T, float>)
      p[i] = x;
    else if constexpr (std::is_same_v<T, __nv_bfloat16>)
      p[i] = __float2bfloat16_rn(x);
    else
      p[i] = __float2half_rn(x);
  }
}

void fill_device(void* p, int64_t n, CudaDtype dtype, uint32_t seed) {
  switch (dtype) {
    case CudaDtype::kFloat32: fill_uniform<<<1024, 256>>>(static_cast<float*>(p), n, seed); break;
    case CudaDtype::kBFloat16:
      fill_uniform<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), n, seed);
      break;
    case CudaDtype::kFloat16: fill_uniform<<<1024, 256>>>(static_cast<__half*>(p), n, seed); break;
  }
  check_cuda(cudaGetLastError(), "fill_uniform");
}

// Median of `runs` timed launches after `warmup` untimed ones. All launches are queued before
// the first is waited for, so the GPU never idles between a start event and its kernel.
double median_ms(const std::function<cudaError_t()>& launch, int warmup = 3, int runs = 25) {
  for (int i = 0; i < warmup; ++i) check_cuda(launch(), "warmup launch");
  std::vector<cudaEvent_t> start(runs), stop(runs);
  for (int i = 0; i < runs; ++i) {
    check_cuda(cudaEventCreate(&start[i]), "cudaEventCreate");
    check_cuda(cudaEventCreate(&stop[i]), "cudaEventCreate");
  }
  for (int i = 0; i < runs; ++i) {
    check_cuda(cudaEventRecord(start[i]), "cudaEventRecord");
    check_cuda(launch(), "timed launch");
    check_cuda(cudaEventRecord(stop[i]), "cudaEventRecord");
  }
  check_cuda(cudaDeviceSynchronize(), "timed kernels");
  std::vector<float> ms(runs);
  for (int i = 0; i < runs; ++i) {
    check_cuda(cudaEventElapsedTime(&ms[i], start[i], stop[i]), "cudaEventElapsedTime");
    cudaEventDestroy(start[i]);
    cudaEventDestroy(stop[i]);
  }
  std::sort(ms.begin(), ms.end());
  return ms[runs / 2];
}

int run_bench(const std::string& json_path) {
  int device = 0;
  cudaDeviceProp prop;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("device: %s (sm_%d%d, %d SMs), CUDA runtime %d, driver %d\n", prop.name, prop.major,
              prop.minor, prop.multiProcessorCount, runtime, driver);
  std::printf("timing: 3 warmup launches, median of 25; attention flops 4 B H Nq Nk D\n");
  std::string json = "{\n  \"device\": \"" + std::string(prop.name) + "\",\n  \"results\": [\n";
  bool first = true;
  auto add_json = [&](const std::string& record) {
    json += (first ? "    " : ",\n    ") + record;
    first = false;
  };

  struct Shape {
    int B, H, N, D;
  };
  const Shape shapes[] = {
      {64, 16, 256, 72}, {64, 16, 256, 64}, {16, 16, 1024, 72}, {8, 16, 4096, 128}};
  for (CudaDtype dtype : {CudaDtype::kBFloat16, CudaDtype::kFloat16})
    for (const Shape& s : shapes) {
      const int64_t elems = int64_t{s.B} * s.H * s.N * s.D;
      DeviceBuffer q(elems * 2), k(elems * 2), v(elems * 2), out(elems * 2);
      fill_device(q.as<void>(), elems, dtype, 1);
      fill_device(k.as<void>(), elems, dtype, 2);
      fill_device(v.as<void>(), elems, dtype, 3);
      AttentionCudaParams p;
      p.q = q.as<void>();
      p.k = k.as<void>();
      p.v = v.as<void>();
      p.out = out.as<void>();
      const int64_t strides[3] = {int64_t{s.H} * s.N * s.D, int64_t{s.N} * s.D, s.D};
      std::copy_n(strides, 3, p.q_stride);
      std::copy_n(strides, 3, p.k_stride);
      std::copy_n(strides, 3, p.v_stride);
      p.batch = s.B;
      p.heads = s.H;
      p.nq = p.nk = s.N;
      p.head_dim = s.D;
      p.softmax_scale = 1.f / std::sqrt(float(s.D));
      p.dtype = dtype;
      const double flops = 4.0 * s.B * s.H * double(s.N) * s.N * s.D;
      for (int config = 0; config < attention_cuda_config_count(s.D); ++config) {
        const double ms = median_ms([&] { return attention_forward_cuda(p, config, nullptr); });
        const char* name = attention_cuda_config_name(s.D, config);
        std::printf("attention %s B=%-3d H=%d N=%-5d D=%-3d %-12s %8.3f ms %7.1f TFLOP/s\n",
                    dtype_name(dtype), s.B, s.H, s.N, s.D, name, ms, flops / ms * 1e-9);
        char record[300];
        std::snprintf(record, sizeof(record),
                      "{\"op\": \"attention\", \"dtype\": \"%s\", \"B\": %d, \"H\": %d, \"N\": %d, "
                      "\"D\": %d, \"config\": \"%s\", \"ms\": %.5f, \"tflops\": %.2f}",
                      dtype_name(dtype), s.B, s.H, s.N, s.D, name, ms, flops / ms * 1e-9);
        add_json(record);
      }
    }

  const int64_t B = 64, N = 256, D = 1152, elems = B * N * D;
  for (CudaDtype dtype : {CudaDtype::kFloat32, CudaDtype::kBFloat16, CudaDtype::kFloat16}) {
    const int64_t elem = dtype_bytes(dtype);
    DeviceBuffer x(elems * elem), y(elems * elem), out(elems * elem), mod(B * 6 * D * elem);
    fill_device(x.as<void>(), elems, dtype, 4);
    fill_device(y.as<void>(), elems, dtype, 5);
    fill_device(mod.as<void>(), B * 6 * D, dtype, 6);
    AdaLNCudaParams a;
    a.x = x.as<void>();
    a.out = out.as<void>();
    a.shift = mod.as<unsigned char>();
    a.scale = mod.as<unsigned char>() + D * elem;
    a.shift_batch_stride = a.scale_batch_stride = 6 * D;
    a.batch = B;
    a.tokens = N;
    a.dim = D;
    a.dtype = dtype;
    GateResidualCudaParams g;
    g.x = out.as<void>();
    g.y = y.as<void>();
    g.gate = mod.as<unsigned char>() + 2 * D * elem;
    g.gate_batch_stride = 6 * D;
    g.batch = B;
    g.tokens = N;
    g.dim = D;
    g.dtype = dtype;
    const struct {
      const char* op;
      std::function<cudaError_t()> launch;
      int tensors_moved;  // x read + out written, or x read + y read + x written
    } ops[] = {{"adaln_modulate", [&] { return adaln_modulate_cuda(a, nullptr); }, 2},
               {"gate_residual", [&] { return gate_residual_cuda(g, nullptr); }, 3}};
    for (const auto& op : ops) {
      const double ms = median_ms(op.launch);
      const double gbps = double(op.tensors_moved) * elems * elem / ms * 1e-6;
      std::printf("%-14s %s B=%lld N=%lld D=%lld %8.3f ms %7.1f GB/s\n", op.op, dtype_name(dtype),
                  (long long)B, (long long)N, (long long)D, ms, gbps);
      char record[300];
      std::snprintf(record, sizeof(record),
                    "{\"op\": \"%s\", \"dtype\": \"%s\", \"B\": %lld, \"N\": %lld, \"D\": %lld, "
                    "\"ms\": %.5f, \"gbps\": %.1f}",
                    op.op, dtype_name(dtype), (long long)B, (long long)N, (long long)D, ms, gbps);
      add_json(record);
    }
  }
  json += "\n  ]\n}\n";
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot write " + json_path);
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return 0;
}

int usage() {
  std::fprintf(stderr, "usage: dit-cuda-selftest check [--quick] | bench [--json FILE]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  bool quick = false;
  std::string json_path;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (mode == "check" && arg == "--quick")
      quick = true;
    else if (mode == "bench" && arg == "--json" && i + 1 < argc)
      json_path = argv[++i];
    else
      return usage();
  }
  if (mode != "check" && mode != "bench") return usage();

  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: skipped (%s)\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    return kSkipped;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess && prop.major < 8) {
    std::printf("no CUDA device: skipped (%s is sm_%d%d; the kernels need sm_80 or newer)\n",
                prop.name, prop.major, prop.minor);
    return kSkipped;
  }
  try {
    return mode == "check" ? run_check(quick) : run_bench(json_path);
  } catch (const std::exception& e) {
    std::printf("dit-cuda-selftest: %s\nFAIL\n", e.what());
    return 1;
  }
}
