// Stand-ins when the engine is built without HDF5: every HDF5 writer reports how to get it.
#ifndef DIT_HAVE_HDF5
#include <dit/error.h>
#include <dit/image.h>

namespace dit {

bool have_hdf5() { return false; }

void write_image_samples_h5(const std::string& path, const torch::Tensor&, const torch::Tensor&,
                            const torch::Tensor&, const nlohmann::json&) {
  throw Error(path + ": this dit-engine was built without HDF5 (install libhdf5-dev and rebuild)");
}

}  // namespace dit
#endif
