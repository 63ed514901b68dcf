// --device / --dtype (dit/inference.h place_for_sampling, dit/runtime.h resolve_device): what
// each choice does on the CPU, the clear errors where there is no GPU, and (on a GPU machine)
// sample_flow running the whole loop on the GPU with the CPU's result.
#include <dit/error.h>
#include <dit/flow.h>
#include <dit/image.h>
#include <dit/inference.h>
#include <dit/runtime.h>
#include <gtest/gtest.h>

#include <string>

namespace {

bool gpu_present() { return !dit::resolve_device("auto").is_cpu(); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dit::Error& e) {
    return e.what();
  }
  return "";
}

dit::DiT small_dit() {
  dit::DiTConfig cfg;
  cfg.input_size = 8, cfg.in_channels = 4, cfg.hidden_size = 128, cfg.num_heads = 2;
  cfg.depth = 2, cfg.num_classes = 10;
  dit::DiT model(cfg);
  model->eval();
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  for (auto& p : model->parameters()) p.normal_(0.0, 0.05);
  return model;
}

}  // namespace

TEST(Placement, ParsesDevicesAndNamesTheFlagInErrors) {
  EXPECT_TRUE(dit::resolve_device("cpu").is_cpu());
  EXPECT_TRUE(dit::resolve_device("").is_cpu());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda0", "cuda:123456", "CPU"})
    EXPECT_NE(error_of([&] { dit::resolve_device(bad, "job.toml: device"); })
                  .find(std::string("job.toml: device ") + bad + ": expected cpu, cuda, cuda:N or auto"),
              std::string::npos)
        << bad;
  if (gpu_present()) {
    EXPECT_TRUE(dit::resolve_device("cuda").is_cuda());
    EXPECT_NE(error_of([] { dit::resolve_device("cuda:99"); }).find("GPU 99 does not exist"), std::string::npos);
  } else {
    const auto e = error_of([] { dit::resolve_device("cuda"); });
    EXPECT_NE(e.find("--device cuda: "), std::string::npos) << e;
    EXPECT_TRUE(e.find("no CUDA") != std::string::npos || e.find("no CUDA GPU") != std::string::npos) << e;
  }
}

TEST(Placement, CpuKeepsFloat32WeightsAndSetsTheLinearPrecision) {
  auto model = small_dit();
  EXPECT_EQ(dit::place_for_sampling(*model, {"cpu", "fp32"}), "cpu fp32 (linears fp32)");
  ASSERT_TRUE(model->inference_precision.has_value());
  EXPECT_EQ(*model->inference_precision, dit::LinearPrecision::kFloat32);
  const auto bf16 = dit::place_for_sampling(*model, {"cpu", "bf16"});
  EXPECT_EQ(bf16, dit::kernels::cpu_has_native_bf16() ? "cpu fp32 (linears bf16)" : "cpu fp32 (linears fp32)");
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  EXPECT_NE(error_of([&] { dit::place_for_sampling(*model, {"cpu", "fp16"}); }).find("--dtype fp16: runs on a GPU only"),
            std::string::npos);
  EXPECT_NE(error_of([&] { dit::place_for_sampling(*model, {"cpu", "int8"}, "d", "job.toml: dtype"); })
                .find("job.toml: dtype int8: expected fp32, bf16 or fp16"),
            std::string::npos);
}

// On a GPU: generate_images with the model on cuda (fp32, then bf16) against the CPU, same
// noise (drawn on the CPU either way). Tolerance: 1e-3 (fp32; kernels differ in summation order)
// and 5e-2 (bf16) of max |sample|, over 8 Euler steps with CFG.
TEST(Placement, SamplingOnTheGpuMatchesTheCpu) {
  if (!gpu_present()) GTEST_SKIP() << "no GPU (or a CPU-only libtorch)";
  auto model = small_dit();
  auto labels = torch::tensor({int64_t{1}, int64_t{3}, int64_t{10}});
  dit::ImageSampling sampling;
  sampling.options.steps = 8;
  sampling.guidance.scale = 2.0;
  dit::Progress quiet;
  dit::place_for_sampling(*model, {"cpu", "fp32"});
  const auto cpu = dit::generate_images(model, labels, sampling, quiet);
  const double scale = std::max(1.0, cpu.abs().max().item<double>());
  for (const char* dtype : {"fp32", "bf16"}) {
    EXPECT_EQ(dit::place_for_sampling(*model, {"cuda", dtype}), std::string("cuda:0 ") + dtype);
    const auto gpu = dit::generate_images(model, labels, sampling, quiet);
    EXPECT_TRUE(gpu.device().is_cpu());
    EXPECT_EQ(gpu.scalar_type(), torch::kFloat32);
    const double err = (gpu - cpu).abs().max().item<double>() / scale;
    EXPECT_LT(err, std::string(dtype) == "fp32" ? 1e-3 : 5e-2) << dtype;
    RecordProperty(std::string("gpu_") + dtype + "_err", std::to_string(err));
  }
}
