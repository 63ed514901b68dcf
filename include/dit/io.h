#pragma once
// Output writers shared by the domains.
#include <torch/torch.h>

#include <map>
#include <string>

namespace dit {

// True when the engine was built with HDF5 (the H5MD writers of later domains need it too).
bool have_hdf5();

// Writes generated images to an HDF5 file: dataset "images" [B, C, H, W] float32 (model
// space, raw sampler output), "labels" [B] int64, "seeds" [B] uint64 (the per-sample noise
// seeds: dit::mix_seed(seed, index)), and every entry of `attributes` as a string attribute
// of the root group (sampler, steps, cfg scale, model, ...). Written to a temp name and
// renamed. Throws dit::Error when built without HDF5 or on any HDF5 failure.
void write_image_samples_h5(const std::string& path, const torch::Tensor& images,
                            const torch::Tensor& labels, const torch::Tensor& seeds,
                            const std::map<std::string, std::string>& attributes);

}  // namespace dit
