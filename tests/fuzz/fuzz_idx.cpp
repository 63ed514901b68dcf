// libFuzzer target: the IDX reader (magic, type, dimension count and sizes, data length),
// through zlib's gzread, so gzip inputs (in the seed corpus) exercise the .gz path too.
#include <dit/image.h>

#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dit_fuzz::MemFile file(data, size);
  dit_fuzz::expect_dit_errors_only(file.path(), [&] {
    auto t = dit::read_idx(file.path());
    if (t.scalar_type() != torch::kUInt8 || t.dim() < 1 || t.dim() > 4) std::abort();
    (void)t.sum().item<int64_t>();  // touch every byte
  });
  return 0;
}
