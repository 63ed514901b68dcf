// The image domain on the shared layer (dit/domain.h): a request is a class label, a structure
// an image in model space [C, H, W]; noise per sample index as generate_images draws it, so
// dit::generate(ImageDomain, ...) and generate_images give the same images.
#include <dit/domain.h>
#include <dit/image.h>

namespace dit {

ImageDomain::ImageDomain(const DiTConfig& config) : config_(config) {}

FlowInputs ImageDomain::encode(const std::vector<int64_t>& labels) const {
  FlowInputs in;
  in.labels = torch::tensor(labels, torch::kLong);
  return in;
}

torch::Tensor ImageDomain::noise(const FlowInputs& inputs, uint64_t seed, int64_t first_index) const {
  return sample_noise(seed, first_index, inputs.batch_size(),
                      {config_.in_channels, config_.input_size, config_.input_size});
}

std::vector<torch::Tensor> ImageDomain::decode(const torch::Tensor& x0, const FlowInputs&,
                                               const std::vector<int64_t>&) const {
  std::vector<torch::Tensor> images;
  for (int64_t i = 0; i < x0.size(0); ++i) images.push_back(x0[i]);
  return images;
}

namespace {
const bool registered_image_domain = register_domain(
    "image", "class-conditional images (DiT, patch tokens): PNG grids and H5MD",
    [] { return std::make_unique<ImageDomain>(DiTConfig::preset("fmnist")); });
}  // namespace

}  // namespace dit
