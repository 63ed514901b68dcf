// libFuzzer target: the safetensors reader (length prefix, JSON header, dtypes, shapes,
// offsets, overlaps, BOOL bytes), then every tensor through view() and load().
#include <dit/safetensors.h>

#include <cstring>

#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dit_fuzz::MemFile file(data, size);
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    dit::SafeTensorsFile f(file.path());
    auto all = f.load();
    for (const auto& name : f.names()) {
      auto view = f.view(name);
      const auto& copy = all.at(name);
      if (view.sizes() != copy.sizes() || view.scalar_type() != copy.scalar_type() ||
          view.numel() != f.numel(name))
        std::abort();
      const size_t n = static_cast<size_t>(copy.numel()) * copy.element_size();
      if (n && std::memcmp(view.contiguous().data_ptr(), copy.data_ptr(), n) != 0) std::abort();
    }
  });
  return 0;
}
