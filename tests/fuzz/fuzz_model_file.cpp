// libFuzzer target: a model file as `dit info` and `dit image sample -m` read it: the
// safetensors reader, weights_prefix, infer_config (shapes and metadata -> DiTConfig), then
// load_dit (shape checks, dtype, NaN/Inf, unexpected tensors) and one forward pass.
#include <dit/model.h>

#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  torch::set_num_threads(1);
  dit_fuzz::MemFile file(data, size);
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    dit::SafeTensorsFile f(file.path());
    auto config = dit::infer_config(f, dit::weights_prefix(f));
    (void)config.describe();
    torch::NoGradGuard no_grad;
    dit::DiT model = dit::load_dit(file.path());
    const auto& c = model->config();
    if (c.input_size > 64 || c.hidden_size > 256) return;  // keep each run fast
    auto x = torch::zeros({1, c.in_channels, c.input_size, c.input_size});
    auto out = model->forward(x, torch::full({1}, 500.0), torch::zeros({1}, torch::kLong));
    if (out.size(1) != c.out_channels()) std::abort();
  });
  return 0;
}
