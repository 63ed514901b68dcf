// Whole-model parity: the DiT forward with each fast backend against the same forward forced
// onto the reference kernels (kernels::ScopedBackend("reference")), on random non-zero weights
// (the adaLN-Zero initialisation would make the blocks identities). Tolerance: 1e-4 times
// max(1, max |output|), fp32 through every block.
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/kernels.h>
#include <dit/model.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

namespace {

// The backends that take CPU float32 tensors ("reference", "cpu:<isa>"); the cuda backend has
// its own test below.
std::vector<std::string> cpu_backends() {
  std::vector<std::string> out;
  for (const auto& name : dit::kernels::available_backends())
    if (name == "reference" || name.rfind("cpu:", 0) == 0) out.push_back(name);
  return out;
}

void randomize(torch::nn::Module& m, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : m.parameters())
    p.copy_(torch::randn_like(p) *
            (p.dim() >= 2 ? 1.0 / std::sqrt(static_cast<double>(p.numel() / p.size(0))) : 0.02));
}

TEST(ModelParity, FastKernelsMatchReferenceForward) {
  for (const char* preset : {"tiny", "fmnist"}) {
    auto cfg = dit::DiTConfig::preset(preset);
    dit::DiT model(cfg);
    model->eval();
    randomize(*model, 7);
    torch::manual_seed(8);
    const int64_t B = 3;
    auto x = torch::randn({B, cfg.in_channels, cfg.input_size, cfg.input_size});
    auto t = torch::tensor({10.0f, 500.0f, 990.0f});
    auto y = torch::tensor({int64_t{0}, int64_t{1}, cfg.null_class()});
    c10::InferenceMode inference;
    torch::Tensor expected;
    {
      dit::kernels::ScopedBackend ref("reference");
      expected = model->forward(x, t, y);
    }
    const double tol = 1e-4 * std::max(1.0, expected.abs().max().item<double>());
    for (const auto& name : cpu_backends()) {
      if (name == "reference") continue;
      dit::kernels::ScopedBackend scoped(name);
      auto out = model->forward(x, t, y);
      EXPECT_LT((out - expected).abs().max().item<double>(), tol) << preset << " " << name;
    }
    // Masked tokens through run_blocks (structure domains): same comparison.
    auto tokens = model->embed_patches(x);
    auto c = model->condition(t, y);
    auto mask = torch::ones({B, tokens.size(1)}, torch::kBool);
    mask.index_put_({1, torch::indexing::Slice(tokens.size(1) / 3)}, false);
    {
      dit::kernels::ScopedBackend ref("reference");
      expected = model->run_blocks(tokens, c, mask);
    }
    for (const auto& name : cpu_backends()) {
      if (name == "reference") continue;
      dit::kernels::ScopedBackend scoped(name);
      auto out = model->run_blocks(tokens, c, mask);
      EXPECT_LT((out - expected).abs().max().item<double>(),
                1e-4 * std::max(1.0, expected.abs().max().item<double>()))
          << preset << " masked " << name;
    }
  }
}

// The inference path (DiTInference: no autograd, reused buffers, in-place residuals) computes
// DiT::forward, on every backend, and allocates its buffers once per (batch, tokens).
TEST(ModelParity, InferencePathMatchesForward) {
  auto cfg = dit::DiTConfig::preset("fmnist");
  dit::DiT model(cfg);
  model->eval();
  randomize(*model, 9);
  dit::DiTInference inference(model);
  torch::NoGradGuard no_grad;
  for (const auto& name : cpu_backends()) {
    dit::kernels::ScopedBackend scoped(name);
    for (int64_t B : {2, 2, 5}) {
      torch::manual_seed(10 + B);
      auto x = torch::randn({B, cfg.in_channels, cfg.input_size, cfg.input_size});
      auto t = torch::rand({B}) * 1000;
      auto y = torch::randint(cfg.num_classes + 1, {B}, torch::kLong);
      auto expected = model->forward(x, t, y);
      auto out = inference.forward(x, t, y);
      EXPECT_LT((out - expected).abs().max().item<double>(),
                1e-4 * std::max(1.0, expected.abs().max().item<double>()))
          << name << " B" << B;
    }
    // Masked tokens.
    auto tokens = torch::randn({2, cfg.num_patches(), cfg.hidden_size});
    auto c = torch::randn({2, cfg.hidden_size});
    auto mask = torch::ones({2, cfg.num_patches()}, torch::kBool);
    mask.index_put_({0, torch::indexing::Slice(20)}, false);
    auto expected = model->run_blocks(tokens, c, mask);
    auto before = tokens.clone();
    auto out = inference.run_blocks(tokens, c, mask);
    EXPECT_TRUE(torch::equal(tokens, before)) << "input tokens must not be modified";
    EXPECT_LT((out - expected).abs().max().item<double>(),
              1e-4 * std::max(1.0, expected.abs().max().item<double>()))
        << name << " masked";
  }
  // Batches per backend 2, 2, 5, then 2 (run_blocks): one allocation per change of shape, so
  // 3 for the first backend and 2 for each further one.
  const int64_t backends = static_cast<int64_t>(cpu_backends().size());
  EXPECT_EQ(inference.allocations(), 2 * backends + 1);
}

// bf16 linear layers (LinearPrecision::kBF16): same function within bf16 rounding. Tolerance:
// 3e-2 of max |output| (each linear has ~4e-3 relative error; errors compound over the blocks).
TEST(ModelParity, BF16LinearsStayCloseToFloat32) {
  auto cfg = dit::DiTConfig::preset("fmnist");
  dit::DiT model(cfg);
  model->eval();
  randomize(*model, 11);
  dit::DiTInference bf16(model, dit::LinearPrecision::kBF16);
  torch::NoGradGuard no_grad;
  torch::manual_seed(12);
  const int64_t B = 3;
  auto x = torch::randn({B, cfg.in_channels, cfg.input_size, cfg.input_size});
  auto t = torch::rand({B}) * 1000;
  auto y = torch::randint(cfg.num_classes, {B}, torch::kLong);
  auto expected = model->forward(x, t, y);
  auto out = bf16.forward(x, t, y);
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  const double rel = (out - expected).abs().max().item<double>() / expected.abs().max().item<double>();
  EXPECT_LT(rel, 3e-2);
  EXPECT_GT(rel, 0.0);  // it really ran in bf16
  EXPECT_THROW(dit::parse_linear_precision("fp16", "test"), dit::Error);
}

// The cuda backend through the whole model: DiT::forward and the inference path on the GPU in
// bf16, against the float32 CPU forward of the same weights, and against the reference kernels
// in bf16 on the GPU (libtorch's own bf16 path). Head dim 64 (the kernels' sizes; DiT-S/B/L).
// Tolerance: 5e-2 of max |output| (bf16 weights and activations through every block), and no
// worse than twice the reference bf16 path's own error plus 1e-2 of max |output|.
TEST(ModelParity, CudaBF16MatchesFloat32Forward) {
#ifndef DIT_HAVE_CUDA_BACKEND
  GTEST_SKIP() << "built against a CPU-only torch: no cuda backend";
#else
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU";
  dit::DiTConfig cfg;
  cfg.input_size = 16;
  cfg.in_channels = 4;
  cfg.hidden_size = 256;
  cfg.num_heads = 4;
  cfg.depth = 3;
  cfg.num_classes = 10;
  dit::DiT model(cfg);
  model->eval();
  randomize(*model, 13);
  torch::manual_seed(14);
  const int64_t B = 3;
  auto x = torch::randn({B, cfg.in_channels, cfg.input_size, cfg.input_size});
  auto t = torch::tensor({16.0f, 496.0f, 992.0f});  // exact in bf16
  auto y = torch::tensor({int64_t{0}, int64_t{7}, cfg.null_class()});
  c10::InferenceMode inference_mode;
  torch::Tensor expected;
  {
    dit::kernels::ScopedBackend ref("reference");
    expected = model->forward(x, t, y);
  }
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  model->to(torch::kCUDA, torch::kBFloat16);
  const auto xd = x.to(torch::kCUDA, torch::kBFloat16), td = t.cuda(), yd = y.cuda();
  auto err = [&](const torch::Tensor& out) {
    EXPECT_TRUE(out.is_cuda());
    return (out.to(torch::kCPU, torch::kFloat64) - expected.to(torch::kFloat64))
               .abs()
               .max()
               .item<double>() /
           scale;
  };
  double reference_err = 0;
  {
    dit::kernels::ScopedBackend ref("reference");
    reference_err = err(model->forward(xd, td, yd));
  }
  dit::kernels::ScopedBackend cuda("cuda");
  const double forward_err = err(model->forward(xd, td, yd));
  dit::DiTInference inference(model);
  const double inference_err = err(inference.forward(xd, td, yd));
  for (double e : {forward_err, inference_err}) {
    EXPECT_LT(e, 5e-2);
    EXPECT_LT(e, 2 * reference_err + 1e-2);
  }
  RecordProperty("reference_bf16_err", std::to_string(reference_err));
  RecordProperty("cuda_forward_err", std::to_string(forward_err));
  RecordProperty("cuda_inference_err", std::to_string(inference_err));
#endif
}

// CudaGraphForward: a CPU-only build says so; on a GPU the replayed graph gives the inference
// path's output (the same kernels on the same inputs: equal up to 1e-6 of max |out|) for new
// inputs copied into it, and refuses inputs of another shape.
TEST(CudaGraph, ReplayMatchesInferenceForward) {
  auto cfg = dit::DiTConfig::preset("fmnist");
  dit::DiT model(cfg);
  model->eval();
  randomize(*model, 15);
  if (!dit::CudaGraphForward::supported() || !torch::cuda::is_available()) {
    dit::DiTInference cpu_inference(model);
    auto x = torch::randn({1, cfg.in_channels, cfg.input_size, cfg.input_size});
    EXPECT_THROW(dit::CudaGraphForward(cpu_inference, x, torch::zeros({1}), torch::zeros({1}, torch::kLong)),
                 dit::Error);
    GTEST_SKIP() << "no CUDA graphs here (CPU-only torch or no GPU)";
  }
  model->to(torch::kCUDA, torch::kBFloat16);
  dit::DiTInference inference(model);
  const auto on = torch::TensorOptions(torch::kCUDA);
  auto make = [&](int64_t seed) {
    torch::manual_seed(seed);
    return std::array<torch::Tensor, 3>{
        torch::randn({2, cfg.in_channels, cfg.input_size, cfg.input_size}).to(on.dtype(torch::kBFloat16)),
        (torch::rand({2}) * 1000).to(on), torch::randint(cfg.num_classes, {2}, torch::kLong).to(on)};
  };
  auto first = make(16);
  dit::CudaGraphForward graph(inference, first[0], first[1], first[2]);
  c10::InferenceMode inference_mode;
  for (int64_t seed : {17, 18}) {
    auto in = make(seed);
    auto expected = inference.forward(in[0], in[1], in[2]);
    auto out = graph.forward(in[0], in[1], in[2]);
    EXPECT_LE((out - expected).abs().max().item<double>(),
              1e-6 * std::max(1.0, expected.abs().max().item<double>()));
  }
  auto wrong = torch::randn({3, cfg.in_channels, cfg.input_size, cfg.input_size}).to(on.dtype(torch::kBFloat16));
  EXPECT_THROW(graph.forward(wrong, first[1], first[2]), dit::Error);
}

}  // namespace
