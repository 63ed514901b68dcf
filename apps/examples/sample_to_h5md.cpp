// A pipeline's view of dit-engine: load the bundled model, sample images of two classes,
// check every sample, and write them with their seeds to an H5MD file.
//   sample_to_h5md OUT.h5 [steps]
#include <dit/h5md.h>
#include <dit/image.h>
#include <dit/model.h>
#include <dit/runtime.h>

#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT.h5 [steps]\n", argv[0]);
    return 2;
  }
  try {
    const std::string out = argv[1];
    dit::set_threads(0);
    dit::DiT model = dit::load_dit(dit::default_image_model_path());

    dit::ImageSampling sampling;  // euler, CFG 3, seed 42 unless changed
    sampling.options.steps = argc > 2 ? std::stoi(argv[2]) : 8;
    sampling.guidance.scale = 3.0;
    auto labels = torch::tensor({0, 0, 0, 0, 7, 7, 7, 7}, torch::kLong);  // T-shirts and sneakers

    dit::Progress quiet;
    torch::Tensor finite;
    auto images = dit::generate_images(model, labels, sampling, quiet, nullptr, 0, {}, &finite);

    // The check for images: every pixel finite and not far outside the model's [-1, 1] range
    // (raw samples overshoot a little; a diverged sample does not stay within 2).
    auto in_range = images.abs().flatten(1).amax(1).le(2.0);
    auto valid = finite.logical_and(in_range);

    auto seeds = torch::empty({labels.size(0)}, torch::kLong);
    for (int64_t k = 0; k < labels.size(0); ++k)
      seeds[k] = static_cast<int64_t>(dit::mix_seed(sampling.seed, static_cast<uint64_t>(k)));
    dit::write_image_samples_h5(out, images, labels, seeds,
                                {{"sampler", {{"name", sampling.sampler}, {"steps", sampling.options.steps}}},
                                 {"example", "apps/examples/sample_to_h5md.cpp"}});
    std::printf("%s: %ld images, %ld valid (dit-engine %s)\n", out.c_str(),
                static_cast<long>(labels.size(0)), static_cast<long>(valid.sum().item<int64_t>()),
                dit::version_string().c_str());
    return valid.all().item<bool>() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sample_to_h5md: error: %s\n", e.what());
    return 1;
  }
}
