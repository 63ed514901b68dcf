#pragma once
// The Stable Diffusion VAE (diffusers AutoencoderKL, e.g. stabilityai/sd-vae-ft-ema and
// sd-vae-ft-mse): turns DiT latents [B, 4, h, w] into RGB images [B, 3, 8h, 8w] and images back
// into latents for training. Weights are read from a diffusers safetensors file under diffusers'
// key names (encoder.*, quant_conv.*, post_quant_conv.*, decoder.*); the architecture is
// inferred from the tensor shapes. Accepted variants:
//   - attention keys of older diffusers (the files on the Hub): mid_block.attentions.0.{query,
//     key, value, proj_attn} for {to_q, to_k, to_v, to_out.0};
//   - attention projections stored as 1x1 convolutions [C, C, 1, 1] instead of linear [C, C];
//   - decoder-only files (no encoder.* / quant_conv.* keys): decode works, encode throws.
// Every key and shape is verified on load: a missing, extra or misshaped tensor is a dit::Error
// naming the file and the key.
//
// Latent scale: decode() takes latents in the DiT's scale (the VAE's latents multiplied by
// scaling_factor, 0.18215 for SD 1.x/2.x VAEs) and encode() returns that scale.
#include <dit/safetensors.h>
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dit {

struct VaeConfig {
  int64_t in_channels = 3;      // image channels the encoder takes
  int64_t out_channels = 3;     // image channels the decoder returns
  int64_t latent_channels = 4;  // encoder.conv_out has 2 * latent_channels (mean, logvar)
  std::vector<int64_t> block_out_channels{128, 256, 512, 512};  // encoder order
  int64_t layers_per_block = 2;  // resnets per encoder block; decoder blocks have one more
  int64_t norm_num_groups = 32;
  double scaling_factor = 0.18215;

  // Image pixels per latent pixel along each side: 2^(levels - 1) (8 for the SD VAE).
  int64_t downscale() const;
  // Throws dit::Error naming the field and what was expected.
  void validate() const;
  std::string describe() const;  // one line
};

// Infers the config from tensor shapes (decoder.*, and encoder.* when present; weights under
// the canonical or the older attention names). Metadata: "vae.norm_num_groups" (else 32) and
// "vae.scaling_factor" (else 0.18215); the group count is not visible in shapes. `source` names
// the file in error messages.
VaeConfig infer_vae_config(const TensorMap& weights, const Metadata& metadata,
                           const std::string& source);

struct VaeLoadOptions {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;  // weights and computation (file dtypes are converted)
};

// Inference only (no autograd: both directions run under NoGradGuard). Copies are cheap and
// share the weights; the object is immutable after loading and safe to use from several
// threads.
class AutoencoderKL {
 public:
  static AutoencoderKL load(const std::string& path, const VaeLoadOptions& options = {});
  // From tensors already in memory (e.g. a renamed or filtered map); `source` names them in
  // errors. The map's tensors are converted to options' device and dtype.
  static AutoencoderKL from_weights(const TensorMap& weights, const Metadata& metadata,
                                    const std::string& source,
                                    const VaeLoadOptions& options = {});

  const VaeConfig& config() const;
  bool has_encoder() const;
  torch::Device device() const;
  torch::Dtype dtype() const;

  // latents [B, latent_channels, h, w] in DiT scale -> images [B, out_channels, h * downscale,
  // w * downscale], nominally in [-1, 1] but NOT clamped (clamp before writing pixels).
  // decoder(post_quant_conv(latents / scaling_factor)). Inputs are moved to the model's device
  // and dtype; the result is on that device in that dtype.
  torch::Tensor decode(const torch::Tensor& latents) const;

  // images [B, in_channels, H, W] in [-1, 1], H and W multiples of downscale() -> latents
  // [B, latent_channels, H / downscale, W / downscale] in DiT scale: the posterior mean times
  // scaling_factor, or with `sample` a draw mean + exp(logvar / 2) * eps, eps ~ N(0, I) drawn
  // from that generator on its own device (so a CPU generator gives the same latents on every
  // device). Throws dit::Error for a decoder-only file.
  torch::Tensor encode(const torch::Tensor& images,
                       std::optional<torch::Generator> sample = std::nullopt) const;

  // The encoder's diagonal Gaussian posterior, unscaled (VAE units): mean and log-variance
  // (clamped to [-30, 20]), each [B, latent_channels, H / downscale, W / downscale].
  struct Posterior {
    torch::Tensor mean, logvar;
  };
  Posterior posterior(const torch::Tensor& images) const;

  struct Impl;  // defined in domains/image/vae.cpp

 private:
  explicit AutoencoderKL(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace dit
