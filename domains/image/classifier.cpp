#include <dit/error.h>
#include <dit/eval.h>
#include <dit/model.h>
#include <dit/safetensors.h>
#include <fmt/format.h>

#include <cmath>

namespace dit {

namespace nn = torch::nn;

ImageClassifierImpl::ImageClassifierImpl(int64_t num_classes) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)));
  fc1 = register_module("fc1", nn::Linear(64 * 7 * 7, 128));
  fc2 = register_module("fc2", nn::Linear(128, num_classes));
}

torch::Tensor ImageClassifierImpl::features(const torch::Tensor& x) {
  auto h = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);  // [B, 32, 14, 14]
  h = torch::max_pool2d(torch::relu(conv2->forward(h)), 2);       // [B, 64, 7, 7]
  return torch::relu(fc1->forward(h.flatten(1)));                 // [B, 128]
}

torch::Tensor ImageClassifierImpl::forward(const torch::Tensor& x) {
  // Dropout on the features regularises training (no-op in eval mode).
  return fc2->forward(torch::dropout(features(x), 0.3, is_training()));  // [B, classes]
}

ImageClassifier train_classifier(const torch::Tensor& images, const torch::Tensor& labels,
                                 int epochs, uint64_t seed, Progress& progress) {
  torch::manual_seed(seed);
  ImageClassifier model(labels.max().item<int64_t>() + 1);
  model->train();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  const int64_t n = images.size(0), batch = 128;
  const int64_t steps_per_epoch = (n + batch - 1) / batch;
  const int64_t total = epochs * steps_per_epoch;
  progress.set_total(total);
  for (int e = 0; e < epochs; ++e) {
    auto perm = at::randperm(n, sample_generator(seed, static_cast<uint64_t>(e)),
                             torch::TensorOptions().dtype(torch::kLong));
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      auto idx = perm.narrow(0, s * batch, std::min(batch, n - s * batch));
      auto x = images.index_select(0, idx);
      // Light augmentation: random horizontal flips keep garments garments.
      if (s % 2) x = x.flip(3);
      auto loss = torch::cross_entropy_loss(model->forward(x), labels.index_select(0, idx));
      const double done = static_cast<double>(e * steps_per_epoch + s) / total;  // cosine decay
      static_cast<torch::optim::AdamOptions&>(opt.param_groups()[0].options())
          .lr(0.5e-3 * (1 + std::cos(M_PI * done)));
      opt.zero_grad();
      loss.backward();
      opt.step();
      progress.update(e * steps_per_epoch + s + 1, fmt::format("loss {:.3f}", loss.item<double>()));
    }
  }
  progress.finish();
  model->eval();
  return model;
}

ImageClassifier load_classifier(const std::string& path) {
  Metadata meta;
  auto weights = load_safetensors(path, &meta);
  auto it = weights.find("fc2.weight");
  if (it == weights.end())
    throw Error(fmt::format("{}: tensor 'fc2.weight' missing: not an image classifier", path));
  ImageClassifier model(it->second.size(0));
  load_state_dict(*model, weights, path);
  model->eval();
  return model;
}

void save_classifier(const std::string& path, ImageClassifier& model) {
  TensorMap weights;
  for (auto& [name, t] : state_dict(*model)) weights[name] = t.detach().to(torch::kFloat16);
  save_safetensors(path, weights, {{"format", "dit-engine image classifier"}});
}

namespace {
template <class F>
torch::Tensor batched(const torch::Tensor& images, F f) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += 500)
    out.push_back(f(images.narrow(0, i, std::min<int64_t>(500, images.size(0) - i))));
  return torch::cat(out);
}
}  // namespace

double classifier_accuracy(ImageClassifier& model, const torch::Tensor& images,
                           const torch::Tensor& labels) {
  auto pred = batched(images, [&](const torch::Tensor& x) { return model->forward(x).argmax(1); });
  return pred.eq(labels).to(torch::kFloat64).mean().item<double>();
}

torch::Tensor classifier_features(ImageClassifier& model, const torch::Tensor& images) {
  return batched(images, [&](const torch::Tensor& x) { return model->features(x); })
      .to(torch::kFloat64);
}

double frechet_distance(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1) || a.size(0) < 2 || b.size(0) < 2)
    throw Error("frechet_distance: expects two [N >= 2, D] feature sets of equal D");
  auto fa = a.to(torch::kFloat64), fb = b.to(torch::kFloat64);
  auto mu_a = fa.mean(0), mu_b = fb.mean(0);
  auto cov = [](const torch::Tensor& f, const torch::Tensor& mu) {
    auto c = f - mu;
    return c.t().matmul(c) / (f.size(0) - 1);
  };
  auto sa = cov(fa, mu_a), sb = cov(fb, mu_b);
  // sqrt of a symmetric PSD matrix via its eigendecomposition (negative round-off clipped).
  auto sqrtm = [](const torch::Tensor& s) {
    auto [w, v] = torch::linalg_eigh(s);
    return v.matmul(torch::diag(w.clamp_min(0).sqrt())).matmul(v.t());
  };
  auto ra = sqrtm(sa);
  auto cross = sqrtm(ra.matmul(sb).matmul(ra));
  return ((mu_a - mu_b).pow(2).sum() + sa.trace() + sb.trace() - 2 * cross.trace()).item<double>();
}

}  // namespace dit
