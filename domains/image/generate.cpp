#include <dit/error.h>
#include <dit/flow.h>
#include <dit/image.h>
#include <fmt/format.h>

namespace dit {

torch::Tensor generate_images(DiT& model, const torch::Tensor& labels,
                              const ImageSampling& sampling, Progress& progress,
                              SampleStats* stats, int64_t first_index,
                              const torch::Tensor& init_noise, torch::Tensor* finite) {
  const auto& c = model->config();
  const int64_t count = labels.size(0);
  auto noise = init_noise.defined()
                   ? init_noise
                   : sample_noise(sampling.seed, first_index, count,
                                  {c.in_channels, c.input_size, c.input_size});
  FlowInputs inputs;
  inputs.labels = labels;
  return sample_flow(*model, inputs, noise, sampling, progress, {}, stats, first_index, finite);
}

std::string default_image_model_path() { return data_dir() + "/models/fmnist-dit.safetensors"; }

}  // namespace dit
