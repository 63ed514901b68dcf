// resolve_device (include/dit/runtime.h): --device cpu | cuda[:N] | auto.
#include <dit/error.h>
#include <dit/runtime.h>
#include <fmt/format.h>

#include <cctype>

namespace dit {

torch::Device resolve_device(const std::string& spec, const std::string& what) {
  if (spec.empty() || spec == "cpu") return torch::Device(torch::kCPU);
  const bool built = at::hasCUDA();  // false for a CPU-only libtorch (Debian's)
  const int gpus = built ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (spec == "auto") return gpus > 0 ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  int index = 0;
  if (spec.rfind("cuda", 0) != 0 ||
      (spec.size() > 4 && (spec[4] != ':' || spec.size() == 5 || spec.size() > 8)))
    throw Error(fmt::format("{} {}: expected cpu, cuda, cuda:N or auto", what, spec));
  if (spec.size() > 4) {
    for (size_t i = 5; i < spec.size(); ++i)
      if (!std::isdigit(static_cast<unsigned char>(spec[i])))
        throw Error(fmt::format("{} {}: expected cpu, cuda, cuda:N or auto", what, spec));
    index = std::stoi(spec.substr(5));
  }
  if (!built)
    throw Error(fmt::format("{} {}: this build's libtorch has no CUDA (a CPU-only libtorch, such "
                            "as Debian's): build against a CUDA PyTorch (docs/gpu-build.md), or "
                            "use --device cpu",
                            what, spec));
  if (gpus == 0)
    throw Error(fmt::format("{} {}: no CUDA GPU is visible (CUDA_VISIBLE_DEVICES, driver): use "
                            "--device cpu or auto",
                            what, spec));
  if (index >= gpus)
    throw Error(fmt::format("{} {}: GPU {} does not exist ({} visible: cuda:0..cuda:{})", what,
                            spec, index, gpus, gpus - 1));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace dit
