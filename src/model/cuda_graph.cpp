// CudaGraphForward (include/dit/inference.h): a DiTInference forward captured once into a CUDA
// graph (at::cuda::CUDAGraph, on a side stream as CUDA requires) and replayed per call. Only a
// build against a CUDA torch has the graph API; Debian's CPU-only torch gets the error path.
#include <dit/error.h>
#include <dit/inference.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

#ifdef DIT_HAVE_CUDA_BACKEND
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dit {

#ifdef DIT_HAVE_CUDA_BACKEND

struct CudaGraphForward::Graph {
  at::cuda::CUDAGraph graph;
  torch::Tensor x, t, y, out;  // the graph's own inputs and output
};

namespace {
void check_like(const torch::Tensor& given, const torch::Tensor& captured, const char* name) {
  if (given.sizes() != captured.sizes() || given.scalar_type() != captured.scalar_type() ||
      given.device() != captured.device())
    throw Error(fmt::format("CudaGraphForward: {} is {} {} on {}, but the graph was captured for "
                            "{} {} on {}",
                            name, fmt::join(given.sizes(), "x"), c10::toString(given.scalar_type()),
                            given.device().str(), fmt::join(captured.sizes(), "x"),
                            c10::toString(captured.scalar_type()), captured.device().str()));
}
}  // namespace

CudaGraphForward::CudaGraphForward(DiTInference& inference, const torch::Tensor& x,
                                   const torch::Tensor& t, const torch::Tensor& y)
    : graph_(std::make_unique<Graph>()) {
  if (!x.is_cuda() || !t.is_cuda() || !y.is_cuda())
    throw Error(fmt::format("CudaGraphForward: x, t and y must be on a GPU (got {}, {}, {})",
                            x.device().str(), t.device().str(), y.device().str()));
  c10::InferenceMode inference_mode;
  const c10::cuda::CUDAGuard device(x.device());
  auto& g = *graph_;
  g.x = x.clone();
  g.t = t.clone();
  g.y = y.clone();
  // Warm-up on a side stream: autotuning, workspace buffers and libraries' lazy set-up happen
  // here, outside the capture (CUDA forbids synchronising and cudaMalloc inside it).
  const auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, x.device().index());
  c10::cuda::device_synchronize();
  {
    const c10::cuda::CUDAStreamGuard on_side(side);
    for (int i = 0; i < 3; ++i) (void)inference.forward(g.x, g.t, g.y);
    side.synchronize();
    g.graph.capture_begin();
    g.out = inference.forward(g.x, g.t, g.y);
    g.graph.capture_end();
  }
  c10::cuda::device_synchronize();
}

torch::Tensor CudaGraphForward::forward(const torch::Tensor& x, const torch::Tensor& t,
                                        const torch::Tensor& y) {
  auto& g = *graph_;
  check_like(x, g.x, "x");
  check_like(t, g.t, "t");
  check_like(y, g.y, "y");
  c10::InferenceMode inference_mode;
  const c10::cuda::CUDAGuard device(x.device());
  g.x.copy_(x);
  g.t.copy_(t);
  g.y.copy_(y);
  g.graph.replay();
  return g.out;
}

bool CudaGraphForward::supported() { return true; }

#else  // a CPU-only torch: no graph API

struct CudaGraphForward::Graph {};

CudaGraphForward::CudaGraphForward(DiTInference&, const torch::Tensor&, const torch::Tensor&,
                                   const torch::Tensor&) {
  throw Error("CudaGraphForward: this build of dit-engine uses a CPU-only torch (build it "
              "against a CUDA torch for CUDA graphs)");
}

torch::Tensor CudaGraphForward::forward(const torch::Tensor&, const torch::Tensor&,
                                        const torch::Tensor&) {
  throw Error("CudaGraphForward: not available in this build");
}

bool CudaGraphForward::supported() { return false; }

#endif

CudaGraphForward::~CudaGraphForward() = default;

}  // namespace dit
