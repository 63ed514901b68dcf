// The image domain in batch jobs: `domain = "image"`, one class-conditional image per sample.
//   [image]
//   classes = [0, 1, 2]   # sample k gets classes[k % len]; default: every class in turn
// Output: /images/value [sample][C][H][W] float32 (model space, pixels = (x + 1) / 2) and
// /images/label [sample], beside the /samples records every domain writes.
#include <dit/error.h>
#include <dit/inference.h>
#include <dit/image.h>
#include <dit/jobs.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)

namespace dit {
namespace {

class ImageBatchDomain : public jobs::BatchDomain {
 public:
  void configure(const jobs::Job& job) override {
    const std::string where = fmt::format("{}: [image]", job.path);
    for (const auto& [key, value] : job.domain_options.items())
      if (key != "classes") throw Error(fmt::format("{} {}: unknown key in [image]", where, key));
    model_path_ = job.model.empty() ? default_image_model_path() : job.model;
    model_ = load_dit(model_path_);
    place_for_sampling(*model_, Placement{job.device, job.dtype}, job.path + ": device",
                       job.path + ": dtype");
    const auto& c = model_->config();
    if (c.num_classes <= 0) throw Error(fmt::format("{}: the image domain needs a class-conditional model", model_path_));
    if (job.domain_options.contains("classes")) {
      const auto& list = job.domain_options["classes"];
      if (!list.is_array() || list.empty())
        throw Error(fmt::format("{} classes: must be a non-empty array of class ids", where));
      for (const auto& v : list) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.num_classes)
          throw Error(fmt::format("{} classes: {} is not a class id of the model (0..{})", where,
                                  v.dump(), c.num_classes - 1));
        classes_.push_back(v.get<int64_t>());
      }
    } else {
      for (int64_t k = 0; k < c.num_classes; ++k) classes_.push_back(k);
    }
    sampling_.sampler = job.sampler.name;
    sampling_.options = job.sampler.options;
    sampling_.guidance = job.sampler.guidance;
    sampling_.seed = job.seed;
    sampling_.chunk = job.batch_size;
  }

  int64_t tokens(int64_t) const override {
    const auto& c = model_->config();
    return (c.input_size / c.patch_size) * (c.input_size / c.patch_size);
  }

  std::vector<std::string> describe() const override {
    return {fmt::format("model {} ({})", model_path_, model_->config().describe()),
            fmt::format("classes {} (sample k gets classes[k % {}])", fmt::join(classes_, ","), classes_.size())};
  }

  nlohmann::json parameters() const override {
    const auto& c = model_->config();
    return {{"model",
             {{"path", model_path_}, {"config", c.describe()}, {"input_size", c.input_size},
              {"patch_size", c.patch_size}, {"in_channels", c.in_channels},
              {"hidden_size", c.hidden_size}, {"depth", c.depth}, {"num_heads", c.num_heads},
              {"num_classes", c.num_classes}}},
            {"image", {{"classes", classes_}}}};
  }

  void create_output(h5md::File&) const override {}  // the images group comes with the first batch

  std::vector<bool> run_batch(const jobs::Batch& batch, h5md::File& file, Progress& progress) override {
    const auto n = static_cast<int64_t>(batch.size());
    for (int64_t i = 1; i < n; ++i)  // image batches are index ranges (all images have one size)
      if (batch[i] != batch[0] + i) throw Error("image batch job: batches must be index ranges");
    auto labels = torch::empty({n}, torch::kInt64);
    for (int64_t i = 0; i < n; ++i)
      labels[i] = classes_[static_cast<size_t>(batch[i]) % classes_.size()];
    torch::Tensor finite;
    auto images = generate_images(model_, labels, sampling_, progress, nullptr, batch[0], {}, &finite);
    std::vector<bool> valid(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      valid[i] = finite[i].item<bool>();
      if (!valid[i])
        fmt::print(stderr, "sample {} (seed {}) became non-finite during sampling: written, flagged invalid\n",
                   batch[i], mix_seed(sampling_.seed, static_cast<uint64_t>(batch[i])));
    }
    append_image_samples(file, images, labels);
    return valid;
  }

 private:
  std::string model_path_;
  DiT model_{nullptr};
  std::vector<int64_t> classes_;
  ImageSampling sampling_;
};

}  // namespace

DIT_REGISTER_BATCH_DOMAIN("image", ImageBatchDomain);

}  // namespace dit
