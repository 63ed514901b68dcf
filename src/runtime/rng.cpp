// Per-sample random streams: every draw for sample k of a run seeded with s comes from a
// generator seeded with mix_seed(s, k), so shards, batches and resumes reproduce exactly the
// samples of one uninterrupted run.
#include <dit/runtime.h>

#include <ATen/CPUGeneratorImpl.h>

namespace dit {

uint64_t mix_seed(uint64_t seed, uint64_t index) {
  // SplitMix64 (Steele et al. 2014) over the pair; distinct indices give decorrelated seeds.
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + index + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

torch::Generator sample_generator(uint64_t seed, uint64_t index) {
  return at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, index));
}

torch::Tensor sample_noise(uint64_t seed, int64_t first, int64_t count,
                           torch::IntArrayRef shape_per_sample) {
  std::vector<torch::Tensor> rows;
  rows.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    auto gen = sample_generator(seed, static_cast<uint64_t>(first + i));
    rows.push_back(at::randn(shape_per_sample, gen, torch::TensorOptions().dtype(torch::kFloat32)));
  }
  return torch::stack(rows);  // [count, shape...]
}

}  // namespace dit
