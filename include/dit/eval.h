#pragma once
// Image quality evaluation: a small CNN classifier trained on the real training set gives
// class accuracy of generated images and the Frechet distance (FD) between its penultimate
// features of generated and real test images (an FID analogue for 28x28 data).
#include <dit/image.h>
#include <dit/runtime.h>
#include <torch/torch.h>

namespace dit {

// conv(1->32,3)+ReLU+pool, conv(32->64,3)+ReLU+pool, fc(64*7*7 -> 128)+ReLU = features,
// fc(128 -> classes) = logits. Input: model space [B, 1, 28, 28] in [-1, 1].
struct ImageClassifierImpl : torch::nn::Module {
  explicit ImageClassifierImpl(int64_t num_classes = 10);
  torch::Tensor features(const torch::Tensor& x);  // [B, 128]
  torch::Tensor forward(const torch::Tensor& x);   // [B, classes]
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ImageClassifier);

// Trains on (images in model space, labels) with Adam; deterministic for a seed and thread count.
ImageClassifier train_classifier(const torch::Tensor& images, const torch::Tensor& labels,
                                 int epochs, uint64_t seed, Progress& progress);
ImageClassifier load_classifier(const std::string& path);
void save_classifier(const std::string& path, ImageClassifier& model);

// Accuracy of the classifier's argmax against labels (batched, no grad).
double classifier_accuracy(ImageClassifier& model, const torch::Tensor& images,
                           const torch::Tensor& labels);
// Penultimate features [N, 128] (batched, no grad), float64.
torch::Tensor classifier_features(ImageClassifier& model, const torch::Tensor& images);

// Frechet distance between Gaussians fitted to two feature sets [N, D]:
//   |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)   (Heusel et al. 2017, eq. 6)
double frechet_distance(const torch::Tensor& features_a, const torch::Tensor& features_b);

}  // namespace dit
