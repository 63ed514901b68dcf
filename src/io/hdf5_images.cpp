// Image samples in HDF5 (plain datasets; the H5MD particle layout is for structures).
#include <dit/error.h>
#include <dit/io.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

namespace dit {

bool have_hdf5() { return true; }

namespace {
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  ~Handle() {
    if (id >= 0) close(id);
  }
};

void check(herr_t status, const std::string& path, const std::string& what) {
  if (status < 0) throw Error(fmt::format("{}: HDF5 failed to write {}", path, what));
}

void write_dataset(hid_t file, const std::string& path, const char* name, hid_t type,
                   const torch::Tensor& data) {
  std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
  Handle space{H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
  Handle set{H5Dcreate2(file, name, type, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
  if (space.id < 0 || set.id < 0) throw Error(fmt::format("{}: HDF5 cannot create dataset '{}'", path, name));
  check(H5Dwrite(set.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data_ptr()), path, name);
}
}  // namespace

void write_image_samples_h5(const std::string& path, const torch::Tensor& images,
                            const torch::Tensor& labels, const torch::Tensor& seeds,
                            const std::map<std::string, std::string>& attributes) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become dit::Error, not stderr noise
  const std::string tmp = path + ".tmp";
  {
    Handle file{H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
    if (file.id < 0) throw Error(fmt::format("{}: cannot create HDF5 file", path));
    try {
      write_dataset(file.id, path, "images", H5T_NATIVE_FLOAT,
                    images.detach().to(torch::kFloat32).contiguous());
      write_dataset(file.id, path, "labels", H5T_NATIVE_INT64, labels.to(torch::kLong).contiguous());
      write_dataset(file.id, path, "seeds", H5T_NATIVE_UINT64, seeds.to(torch::kLong).contiguous());
      for (const auto& [key, value] : attributes) {
        Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
        H5Tset_size(type.id, std::max<size_t>(1, value.size()));
        Handle space{H5Screate(H5S_SCALAR), H5Sclose};
        Handle attr{H5Acreate2(file.id, key.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
        if (attr.id < 0) throw Error(fmt::format("{}: HDF5 cannot create attribute '{}'", path, key));
        std::string padded = value.empty() ? std::string(1, '\0') : value;
        check(H5Awrite(attr.id, type.id, padded.data()), path, "attribute " + key);
      }
      check(H5Fflush(file.id, H5F_SCOPE_GLOBAL), path, "flush");
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: cannot rename into place", path));
  }
}

}  // namespace dit
