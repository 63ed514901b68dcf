// libFuzzer target: the torch.save (.pt) reader: our zip central-directory scan, libtorch's
// PyTorchStreamReader, the restricted pickle machine, and every tensor's size / stride / offset
// against its storage. Every element of each (small) tensor is read here, in instrumented code,
// so a view reaching outside its storage buffer is an ASan report, not a silent read inside
// (uninstrumented) libtorch.
#include <dit/torch_pt.h>

#include <cstdlib>
#include <vector>

#include "fuzz_input.h"

namespace {

// Reads one byte of every element of t through its sizes, strides and offset.
void touch_every_element(const torch::Tensor& t) {
  if (t.numel() == 0 || t.numel() > (1 << 16)) return;
  const int64_t elsize = t.element_size();
  const auto* base = static_cast<const volatile uint8_t*>(t.storage().data());
  const auto sizes = t.sizes();
  const auto strides = t.strides();
  int64_t last = t.storage_offset();
  for (size_t d = 0; d < sizes.size(); ++d) last += (sizes[d] - 1) * strides[d];
  if ((last + 1) * elsize > static_cast<int64_t>(t.storage().nbytes())) std::abort();
  std::vector<int64_t> index(sizes.size(), 0);
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t at = t.storage_offset();
    for (size_t d = 0; d < sizes.size(); ++d) at += index[d] * strides[d];
    (void)base[at * elsize + elsize - 1];
    for (size_t d = sizes.size(); d-- > 0;) {
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dit_fuzz::MemFile file(data, size);
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    const bool zip = dit::is_torch_zip_file(file.path());
    dit::Metadata skipped;
    const dit::TensorMap tensors = dit::load_torch_pt(file.path(), &skipped);
    if (!zip) std::abort();  // only a zip archive may load
    for (const auto& [key, t] : tensors) {
      if (!t.device().is_cpu() || skipped.count(key)) std::abort();
      touch_every_element(t);
    }
  });
  return 0;
}
