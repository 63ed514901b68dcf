// libFuzzer target: the PNG reader (libpng with strip-16, packing and expand transforms,
// tEXt chunks).
#include <dit/image.h>

#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dit_fuzz::MemFile file(data, size);
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    auto img = dit::read_png(file.path());
    if (img.pixels.size(0) != img.height || img.pixels.size(1) != img.width ||
        img.pixels.size(2) != img.channels)
      std::abort();
    (void)img.pixels.sum().item<int64_t>();
  });
  return 0;
}
