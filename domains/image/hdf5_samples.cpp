// Image samples in the H5MD output file (plain datasets beside the H5MD groups).
#include <dit/error.h>
#include <dit/files.h>
#include <dit/image.h>
#include <fmt/format.h>

namespace dit {

void append_image_samples(h5md::File& file, const torch::Tensor& images, const torch::Tensor& labels) {
  if (images.dim() != 4 || labels.dim() != 1 || images.size(0) != labels.size(0))
    throw Error(fmt::format("{}: images must be [B, C, H, W] with B labels", file.path()));
  if (!file.exists("images"))
    file.set_attribute("images", "value_space", "model space [-1, 1]; pixels = (value + 1) / 2");
  file.append_rows("images/value", images.to(torch::kFloat32), 16);
  file.append_rows("images/label", labels.to(torch::kInt64), 1024);
}

void write_image_samples_h5(const std::string& path, const torch::Tensor& images,
                            const torch::Tensor& labels, const torch::Tensor& seeds,
                            const nlohmann::json& parameters, const torch::Tensor& latents) {
  const torch::Tensor& samples = images.defined() ? images : latents;  // what the flags judge
  AtomicOutput out(path);
  {  // the file is closed before the rename; an error leaves neither `path` nor the temporary
    h5md::File file(out.temp_path(), h5md::Mode::Create);
    file.write_json("parameters", parameters);
    if (images.defined()) {
      append_image_samples(file, images, labels);
    } else {
      file.append_rows("images/label", labels.to(torch::kInt64), 1024);
    }
    if (latents.defined()) {
      if (latents.dim() != 4 || latents.size(0) != labels.size(0))
        throw Error(fmt::format("{}: latents must be [B, C, h, w] with B labels", path));
      file.set_attribute("latents", "value_space",
                         "the DiT's latent space (VAE latents times its scaling factor)");
      file.append_rows("latents/value", latents.to(torch::kFloat32), 16);
    }
    auto valid = torch::isfinite(samples).flatten(1).all(1);
    h5md::append_sample_records(file, torch::arange(samples.size(0), torch::kInt64), seeds, valid);
    file.flush();
  }
  out.commit();
}

}  // namespace dit
