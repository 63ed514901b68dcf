// Determinism: the same seed, the same thread count and the same build give bit-identical CPU
// image samples, for every registered sampler, in one process and across processes (the
// bundled model through the dit CLI, compared as raw float samples in HDF5).
#include <dit/image.h>
#include <dit/runtime.h>
#include <dit/sampler.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <dit/fs.h>
#include <string>

#ifdef DIT_HAVE_HDF5
#include <hdf5.h>
#endif

namespace {

namespace fs = dit::fs;

dit::DiT bundled_model() {
  return dit::load_dit(std::string(DIT_SOURCE_DIR) + "/data/models/fmnist-dit.safetensors");
}

TEST(Determinism, SameSeedSameThreadsBitIdenticalForEverySampler) {
  auto bundled = bundled_model();
  auto few_step = dit::load_dit(std::string(DIT_SOURCE_DIR) + "/data/models/fmnist-dit-fewstep.safetensors");
  dit::DiTLoadOptions heads;  // the published-format fixture (tests/fixtures/official)
  heads.heads = 2;
  auto epsilon = dit::load_dit(std::string(DIT_TEST_FIXTURES) + "/official/DiT-tiny.pt", heads);
  const auto labels = torch::tensor({7, 0, 3}, torch::kLong);
  for (int threads : {1, 2}) {
    dit::set_threads(threads);
    for (const auto& [name, description] : dit::list_samplers()) {
      SCOPED_TRACE(name + ", " + std::to_string(threads) + " threads");
      // Flow-map samplers run the bundled few-step model (they refuse a plain flow model), the
      // diffusion samplers an epsilon-prediction model.
      const auto sampler = dit::make_sampler(name);
      auto& model = sampler->uses_flow_map() ? few_step : sampler->uses_epsilon() ? epsilon : bundled;
      dit::ImageSampling s;
      s.sampler = name, s.seed = 2026, s.options.steps = 2, s.guidance.scale = 2.5;
      s.options.atol = 0.1, s.options.rtol = 0.1;  // dopri5: a few steps only
      s.chunk = 2;  // two chunks of different sizes
      dit::Progress quiet;
      const auto a = dit::generate_images(model, labels, s, quiet);
      const auto b = dit::generate_images(model, labels, s, quiet);
      ASSERT_EQ(a.sizes(), b.sizes());
      EXPECT_TRUE(torch::equal(a, b)) << "max diff " << (a - b).abs().max().item<float>();
      EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
    }
  }
  dit::set_threads(0);
}

#ifdef DIT_HAVE_HDF5
torch::Tensor read_h5_images(const std::string& path, int64_t n) {
  auto out = torch::empty({n, 1, 28, 28});
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << path;
  if (f < 0) return out;
  // "images" is the dataset, or (H5MD layout) a group holding it as "value".
  hid_t obj = H5Oopen(f, "images", H5P_DEFAULT);
  EXPECT_GE(obj, 0) << path;
  const bool group = H5Iget_type(obj) == H5I_GROUP;
  hid_t d = group ? H5Dopen2(obj, "value", H5P_DEFAULT) : obj;
  EXPECT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), 0);
  if (group) H5Dclose(d);
  H5Oclose(obj);
  H5Fclose(f);
  return out;
}

int run_cli(const std::string& args) {
  const int status = std::system((std::string(DIT_CLI) + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Determinism, SeparateProcessesWriteBitIdenticalSamples) {
  if (std::string(DIT_CLI).empty() || !fs::exists(DIT_CLI)) GTEST_SKIP() << "dit CLI not built";
  const fs::path dir = fs::temp_directory_path() / ("dit_determinism_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* threads : {"1", "2"}) {
    SCOPED_TRACE(std::string(threads) + " threads");
    const std::string common = std::string(" -b 3 --seed 99 --steps 3 --sampler heun -o '' -t ") + threads;
    ASSERT_EQ(run_cli("image sample --h5 " + (dir / "a.h5").string() + common), 0);
    ASSERT_EQ(run_cli("image sample --h5 " + (dir / "b.h5").string() + common), 0);
    const auto a = read_h5_images((dir / "a.h5").string(), 3);
    const auto b = read_h5_images((dir / "b.h5").string(), 3);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_GT(a.std().item<float>(), 0.1f);  // real samples, not zeros
  }
  fs::remove_all(dir);
}
#endif

}  // namespace
