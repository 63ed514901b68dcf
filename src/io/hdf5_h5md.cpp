// H5MD files on the HDF5 C API (see include/dit/h5md.h for the layout and crash-safety rules).
#include <dit/error.h>
#include <dit/h5md.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)
#include <hdf5.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <dit/fs.h>
#include <functional>

namespace dit {
bool have_hdf5() { return true; }
}  // namespace dit

namespace dit::h5md {

namespace {

// Closes an HDF5 identifier when it goes out of scope.
class Id {
 public:
  Id() = default;
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Id(Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Id& operator=(Id&& o) noexcept {
    std::swap(id_, o.id_);
    std::swap(close_, o.close_);
    return *this;
  }
  Id(const Id&) = delete;
  ~Id() {
    if (id_ >= 0 && close_) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

hid_t native_type(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return H5T_NATIVE_FLOAT;
    case torch::kFloat64: return H5T_NATIVE_DOUBLE;
    case torch::kInt64: return H5T_NATIVE_INT64;
    case torch::kInt32: return H5T_NATIVE_INT32;
    case torch::kUInt8: return H5T_NATIVE_UINT8;
    default: return -1;
  }
}

torch::ScalarType torch_type(hid_t type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT && size == 4) return torch::kFloat32;
  if (cls == H5T_FLOAT && size == 8) return torch::kFloat64;
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 8) return torch::kInt64;  // uint64 seeds are read as their int64 bit pattern
    if (size == 4 && is_signed) return torch::kInt32;
    if (size == 2 && is_signed) return torch::kInt32;  // int16 (e.g. atomic numbers) widened on read
    if (size == 1 && !is_signed) return torch::kUInt8;
  }
  throw Error(fmt::format("{}: unsupported HDF5 element type (class {}, {} bytes)", where,
                          static_cast<int>(cls), size));
}

// Variable-length UTF-8 strings: h5py reads them as str.
Id string_type() {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

// Why the last HDF5 call failed, from its error stack: the system error of the innermost entry
// when there is one ("No space left on device", "Read-only file system"), else its description.
// As " (reason)", or empty when the stack is empty.
std::string hdf5_reason() {
  std::string inner;
  auto innermost = [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
    if (n == 0 && e && e->desc) *static_cast<std::string*>(data) = e->desc;
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &inner);
  if (auto at = inner.find("error message = '"); at != std::string::npos) {
    at += 17;
    inner = inner.substr(at, inner.find('\'', at) - at);
  }
  return inner.empty() ? inner : " (" + inner + ")";
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace

struct File::Impl {
  std::string path;
  Mode mode = Mode::Read;
  Id file;
  off_t reserved_end = 0;  // end of the space preallocated by reserve()

  int fd() const {
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file.get(), H5P_DEFAULT, &handle) < 0 || !handle) return -1;
    return *static_cast<int*>(handle);
  }

  // Gives back preallocated space past the end of the file.
  void release_reserve() {
    struct stat st;
    const int f = fd();
    if (reserved_end > 0 && f >= 0 && ::fstat(f, &st) == 0 && reserved_end > st.st_size)
      ::fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size, reserved_end - st.st_size);
    reserved_end = 0;
  }

  std::string where(const std::string& object) const { return fmt::format("{}: '{}'", path, object); }

  void check(herr_t status, const std::string& object, const std::string& what) const {
    if (status < 0) throw Error(fmt::format("{}: HDF5 failed to {}{}", where(object), what, hdf5_reason()));
  }

  void require_writable(const std::string& object) const {
    if (mode == Mode::Read || mode == Mode::ReadData) throw Error(fmt::format("{}: file is open read-only", where(object)));
  }

  bool exists(const std::string& object) const {
    if (object.empty() || object == "/") return true;
    // H5Lexists needs every parent to exist: walk the path one link at a time.
    std::string prefix;
    size_t start = 0;
    while (start <= object.size()) {
      size_t end = object.find('/', start);
      if (end == std::string::npos) end = object.size();
      prefix += (prefix.empty() ? "" : "/") + object.substr(start, end - start);
      if (H5Lexists(file.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      start = end + 1;
    }
    return true;
  }

  Id group(const std::string& name) {
    if (name.empty() || name == "/") return Id(H5Gopen2(file.get(), "/", H5P_DEFAULT), H5Gclose);
    if (exists(name)) {
      Id g(H5Gopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Gclose);
      if (!g.ok()) throw Error(fmt::format("{} is not a group", where(name)));
      return g;
    }
    require_writable(name);
    Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    Id g(H5Gcreate2(file.get(), name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.ok()) throw Error(fmt::format("{}: HDF5 cannot create group", where(name)));
    return g;
  }

  Id open_dataset(const std::string& name) const {
    if (!exists(name)) throw Error(fmt::format("{}: dataset does not exist", where(name)));
    Id d(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    if (!d.ok()) throw Error(fmt::format("{}: not a dataset", where(name)));
    return d;
  }

  std::vector<hsize_t> dims(hid_t dataset) const {
    Id space(H5Dget_space(dataset), H5Sclose);
    int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> d(std::max(rank, 0));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), d.data(), nullptr);
    return d;
  }

  // Opens an attribute for writing, replacing an existing one of the same name.
  Id new_attribute(const std::string& object, const std::string& name, hid_t type, hid_t space) {
    require_writable(object);
    if (!exists(object)) group(object);
    Id obj(H5Oopen(file.get(), object.empty() ? "/" : object.c_str(), H5P_DEFAULT), H5Oclose);
    if (!obj.ok()) throw Error(fmt::format("{}: cannot open object", where(object)));
    if (H5Aexists(obj.get(), name.c_str()) > 0) H5Adelete(obj.get(), name.c_str());
    Id attr(H5Acreate2(obj.get(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) throw Error(fmt::format("{}: HDF5 cannot create attribute '{}'", where(object), name));
    return attr;
  }

  template <class T>
  void numeric_attribute(const std::string& object, const std::string& name, hid_t type,
                         const std::vector<T>& values, bool scalar) {
    hsize_t n = values.size();
    Id space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
    Id attr = new_attribute(object, name, type, space.get());
    check(H5Awrite(attr.get(), type, values.data()), object, "write attribute " + name);
  }
};

File::File(const std::string& path, Mode mode, const Provenance& provenance)
    : impl_(std::make_unique<Impl>()) {
  // HDF5's exit handler closes files still open at exit; one whose close failed (I/O error)
  // crashes it (H5F__close_cb, HDF5 1.10). Our File objects close their files themselves.
  static const bool no_atexit = H5dont_atexit() >= 0;
  (void)no_atexit;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become dit::Error, not stderr noise
  impl_->path = path;
  impl_->mode = mode;
  // No metadata-cache evictions between flushes: dirty metadata reaches the file only in
  // flush(), so a crash between flushes leaves the last flushed state intact.
  Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5AC_cache_config_t mdc;
  mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
  H5Pget_mdc_config(fapl.get(), &mdc);
  mdc.evictions_enabled = false;
  mdc.incr_mode = H5C_incr__off;
  mdc.flash_incr_mode = H5C_flash_incr__off;
  mdc.decr_mode = H5C_decr__off;
  H5Pset_mdc_config(fapl.get(), &mdc);
  if (mode == Mode::Create || mode == Mode::Scratch) {
    if (mode == Mode::Create && dit::fs::exists(path))
      throw Error(fmt::format("{}: output file exists already", path));
    // No free-space reuse: new data is always allocated past the end of the file, never in
    // space that the last flushed state still refers to.
    Id fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    if (mode == Mode::Create) H5Pset_file_space_strategy(fcpl.get(), H5F_FSPACE_STRATEGY_NONE, 0, 1);
    impl_->file = Id(H5Fcreate(path.c_str(), mode == Mode::Create ? H5F_ACC_EXCL : H5F_ACC_TRUNC,
                               fcpl.get(), mode == Mode::Create ? fapl.get() : H5P_DEFAULT), H5Fclose);
    if (!impl_->file.ok()) throw Error(fmt::format("{}: cannot create HDF5 file{}", path, hdf5_reason()));
    write_h5md_header(*this, provenance);
  } else {
    if (!dit::fs::exists(path)) throw Error(fmt::format("{}: no such file", path));
    if (H5Fis_hdf5(path.c_str()) <= 0) throw Error(fmt::format("{}: not an HDF5 file", path));
    unsigned flags = mode == Mode::Append ? H5F_ACC_RDWR : H5F_ACC_RDONLY;  // Read, ReadData: read-only
    impl_->file = Id(H5Fopen(path.c_str(), flags, fapl.get()), H5Fclose);
    if (!impl_->file.ok())
      throw Error(fmt::format("{}: HDF5 cannot open the file{} (damaged, or open for writing "
                              "by another process)",
                              path, mode == Mode::Append ? " for writing" : ""));
    if (mode != Mode::ReadData && !impl_->exists("h5md"))
      throw Error(fmt::format("{}: group 'h5md' missing: not an H5MD file", path));
  }
}

File::~File() {
  if (impl_ && impl_->file.ok() && impl_->mode != Mode::Read && impl_->mode != Mode::ReadData) {
    H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL);
    impl_->release_reserve();
  }
}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;

const std::string& File::path() const { return impl_->path; }

void File::append_rows(const std::string& name, const torch::Tensor& rows_in, int64_t chunk_rows,
                       bool as_uint64) {
  auto& m = *impl_;
  m.require_writable(name);
  if (rows_in.dim() < 1) throw Error(fmt::format("{}: append needs at least one axis", m.where(name)));
  auto rows = rows_in.dtype() == torch::kBool ? rows_in.to(torch::kUInt8) : rows_in;
  rows = rows.detach().cpu().contiguous();
  if (as_uint64 && rows.scalar_type() != torch::kInt64)
    throw Error(fmt::format("{}: uint64 rows must come as int64 bit patterns", m.where(name)));
  const hid_t type = as_uint64 ? H5T_NATIVE_UINT64 : native_type(rows.scalar_type());
  if (type < 0)
    throw Error(fmt::format("{}: cannot store tensors of type {}", m.where(name), c10::toString(rows.scalar_type())));
  std::vector<hsize_t> add(rows.sizes().begin(), rows.sizes().end());
  for (size_t i = 1; i < add.size(); ++i)
    if (add[i] == 0) throw Error(fmt::format("{}: inner axis {} has size 0", m.where(name), i));
  Id set;
  std::vector<hsize_t> have;
  if (!m.exists(name)) {
    m.group(parent_of(name));
    std::vector<hsize_t> zero = add, max = add, chunk = add;
    zero[0] = 0;
    max[0] = H5S_UNLIMITED;
    chunk[0] = static_cast<hsize_t>(std::max<int64_t>(1, chunk_rows));
    Id space(H5Screate_simple(static_cast<int>(zero.size()), zero.data(), max.data()), H5Sclose);
    Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    set = Id(H5Dcreate2(m.file.get(), name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(),
                        H5P_DEFAULT), H5Dclose);
    if (!set.ok()) throw Error(fmt::format("{}: HDF5 cannot create dataset{}", m.where(name), hdf5_reason()));
    have = zero;
  } else {
    set = m.open_dataset(name);
    have = m.dims(set.get());
    Id stored(H5Dget_type(set.get()), H5Tclose);
    if (have.size() != add.size() || !std::equal(have.begin() + 1, have.end(), add.begin() + 1) ||
        torch_type(stored.get(), m.where(name)) != rows.scalar_type())
      throw Error(fmt::format("{}: appended rows [{}] {} do not match the stored [{}] {}",
                              m.where(name), fmt::join(add, ", "), c10::toString(rows.scalar_type()),
                              fmt::join(have, ", "),
                              c10::toString(torch_type(stored.get(), m.where(name)))));
  }
  if (add[0] == 0) return;
  std::vector<hsize_t> total = have, offset(have.size(), 0);
  total[0] += add[0];
  offset[0] = have[0];
  m.check(H5Dset_extent(set.get(), total.data()), name, "extend the dataset");
  Id file_space(H5Dget_space(set.get()), H5Sclose);
  m.check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, add.data(), nullptr),
          name, "select rows");
  Id mem_space(H5Screate_simple(static_cast<int>(add.size()), add.data(), nullptr), H5Sclose);
  m.check(H5Dwrite(set.get(), type, mem_space.get(), file_space.get(), H5P_DEFAULT, rows.data_ptr()),
          name, "write rows");
}

void File::append_frames(const std::string& element, const torch::Tensor& values,
                         const torch::Tensor& samples) {
  if (samples.dim() != 1 || values.dim() < 1 || samples.size(0) != values.size(0))
    throw Error(fmt::format("{}: {} sample indices for {} frames", impl_->where(element),
                            samples.numel(), values.dim() ? values.size(0) : 0));
  auto steps = samples.to(torch::kInt64);
  append_rows(element + "/value", values);
  append_rows(element + "/step", steps, 1024);
  append_rows(element + "/time", steps.to(torch::kFloat64), 1024);
}

void File::write_dataset(const std::string& name, const torch::Tensor& data_in) {
  auto& m = *impl_;
  m.require_writable(name);
  if (m.exists(name)) throw Error(fmt::format("{}: dataset exists already", m.where(name)));
  auto data = (data_in.dtype() == torch::kBool ? data_in.to(torch::kUInt8) : data_in).detach().cpu().contiguous();
  const hid_t type = native_type(data.scalar_type());
  if (type < 0) throw Error(fmt::format("{}: cannot store tensors of type {}", m.where(name), c10::toString(data.scalar_type())));
  m.group(parent_of(name));
  std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
  Id space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Id set(H5Dcreate2(m.file.get(), name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!set.ok()) throw Error(fmt::format("{}: HDF5 cannot create dataset", m.where(name)));
  m.check(H5Dwrite(set.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data_ptr()), name, "write");
}

void File::set_attribute(const std::string& object, const std::string& name, const std::string& value) {
  auto type = string_type();
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id attr = impl_->new_attribute(object, name, type.get(), space.get());
  const char* p = value.c_str();
  impl_->check(H5Awrite(attr.get(), type.get(), &p), object, "write attribute " + name);
}

void File::set_attribute(const std::string& object, const std::string& name,
                         const std::vector<std::string>& value) {
  auto type = string_type();
  hsize_t n = value.size();
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Id attr = impl_->new_attribute(object, name, type.get(), space.get());
  std::vector<const char*> ptrs;
  for (const auto& s : value) ptrs.push_back(s.c_str());
  impl_->check(H5Awrite(attr.get(), type.get(), ptrs.data()), object, "write attribute " + name);
}

void File::set_attribute(const std::string& object, const std::string& name, int64_t value) {
  impl_->numeric_attribute<int64_t>(object, name, H5T_NATIVE_INT64, {value}, true);
}

void File::set_attribute(const std::string& object, const std::string& name, double value) {
  impl_->numeric_attribute<double>(object, name, H5T_NATIVE_DOUBLE, {value}, true);
}

void File::set_attribute(const std::string& object, const std::string& name,
                         const std::vector<int64_t>& value) {
  impl_->numeric_attribute<int64_t>(object, name, H5T_NATIVE_INT64, value, false);
}

void File::write_json(const std::string& group, const nlohmann::json& object) {
  if (object.is_null()) return;
  if (!object.is_object()) throw Error(fmt::format("{}: write_json needs a JSON object", impl_->where(group)));
  impl_->group(group);
  for (const auto& [key, value] : object.items()) {
    const std::string child = group.empty() ? key : group + "/" + key;
    if (value.is_object()) {
      write_json(child, value);
    } else if (value.is_string()) {
      set_attribute(group, key, value.get<std::string>());
    } else if (value.is_boolean()) {
      set_attribute(group, key, static_cast<int64_t>(value.get<bool>()));
    } else if (value.is_number_integer()) {
      set_attribute(group, key, value.get<int64_t>());
    } else if (value.is_number()) {
      set_attribute(group, key, value.get<double>());
    } else if (value.is_array() && std::all_of(value.begin(), value.end(), [](auto& v) { return v.is_number_integer(); })) {
      set_attribute(group, key, value.get<std::vector<int64_t>>());
    } else if (value.is_array() && std::all_of(value.begin(), value.end(), [](auto& v) { return v.is_string(); })) {
      set_attribute(group, key, value.get<std::vector<std::string>>());
    } else {
      set_attribute(group, key, value.dump());  // mixed arrays, null: their JSON text
    }
  }
}

void File::truncate_rows(const std::string& group, int64_t rows) {
  auto& m = *impl_;
  m.require_writable(group);
  for (const auto& name : extendable_datasets(group)) {
    Id set = m.open_dataset(name);
    auto d = m.dims(set.get());
    if (d.empty() || d[0] <= static_cast<hsize_t>(rows)) continue;
    d[0] = static_cast<hsize_t>(rows);
    m.check(H5Dset_extent(set.get(), d.data()), name, "shrink the dataset");
  }
}

std::vector<std::string> File::extendable_datasets(const std::string& group) const {
  auto& m = *impl_;
  std::vector<std::string> datasets, out;
  if (!m.exists(group)) return out;
  auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  Id g(H5Oopen(m.file.get(), group.empty() ? "/" : group.c_str(), H5P_DEFAULT), H5Oclose);
  m.check(H5Ovisit2(g.get(), H5_INDEX_NAME, H5_ITER_INC, visit, &datasets, H5O_INFO_BASIC), group,
          "list datasets");
  for (const auto& rel : datasets) {
    const std::string name = (group.empty() || group == "/") ? rel : group + "/" + rel;
    Id set = m.open_dataset(name);
    Id dcpl(H5Dget_create_plist(set.get()), H5Pclose);
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) out.push_back(name);
  }
  return out;
}

void File::copy_from(const File& source, const std::string& object) {
  auto& m = *impl_;
  m.require_writable(object);
  if (!source.exists(object))
    throw Error(fmt::format("{}: '{}' does not exist", source.path(), object));
  if (auto parent = parent_of(object); !parent.empty()) m.group(parent);
  m.check(H5Ocopy(source.impl_->file.get(), object.c_str(), m.file.get(), object.c_str(),
                  H5P_DEFAULT, H5P_DEFAULT),
          object, "copy from " + source.path());
}

void File::flush() {
  auto& m = *impl_;
  m.require_writable("/");
  m.check(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL), "/", "flush");
  void* handle = nullptr;
  if (H5Fget_vfd_handle(m.file.get(), H5P_DEFAULT, &handle) >= 0 && handle) {
    if (::fsync(*static_cast<int*>(handle)) != 0)
      throw Error(fmt::format("{}: fsync failed (disk full or I/O error)", m.path));
  }
}

void File::reserve(int64_t bytes) {
  auto& m = *impl_;
  m.require_writable("/");
  struct stat st;
  const int f = m.fd();
  if (bytes <= 0 || f < 0 || ::fstat(f, &st) != 0) return;
  // HDF5 allocates new space at its end of allocation, which may lie past the bytes written.
  hsize_t hdf5_size = 0;
  H5Fget_filesize(m.file.get(), &hdf5_size);
  const off_t start = st.st_size, end = std::max<off_t>(start, static_cast<off_t>(hdf5_size)) + bytes;
  if (end <= m.reserved_end) return;
  if (::fallocate(f, FALLOC_FL_KEEP_SIZE, start, end - start) != 0) {
    const int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) return;  // this filesystem cannot preallocate
    ::fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, end - start);  // partial
    throw Error(fmt::format("{}: cannot reserve {} bytes for the next batch: {} (the file keeps "
                            "every batch written so far; free space and rerun to continue)",
                            m.path, end - start, std::strerror(err)));
  }
  m.reserved_end = end;
}

bool File::exists(const std::string& object) const { return impl_->exists(object); }

int64_t File::rows(const std::string& name) const {
  if (!impl_->exists(name)) return 0;
  auto set = impl_->open_dataset(name);
  auto d = impl_->dims(set.get());
  return d.empty() ? 1 : static_cast<int64_t>(d[0]);
}

std::vector<int64_t> File::shape(const std::string& name) const {
  auto set = impl_->open_dataset(name);
  auto d = impl_->dims(set.get());
  return {d.begin(), d.end()};
}

torch::Tensor File::read(const std::string& name, int64_t begin, int64_t count) const {
  auto& m = *impl_;
  auto set = m.open_dataset(name);
  auto d = m.dims(set.get());
  Id stored(H5Dget_type(set.get()), H5Tclose);
  const auto dtype = torch_type(stored.get(), m.where(name));
  // uint64 (seeds) is read as uint64 into int64 storage: the bits are kept, not clamped.
  const bool is_u64 = H5Tget_class(stored.get()) == H5T_INTEGER && H5Tget_size(stored.get()) == 8 &&
                      H5Tget_sign(stored.get()) == H5T_SGN_NONE;
  const hid_t memory_type = is_u64 ? H5T_NATIVE_UINT64 : native_type(dtype);
  if (d.empty()) {  // scalar
    auto out = torch::empty({}, torch::TensorOptions().dtype(dtype));
    m.check(H5Dread(set.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), name, "read");
    return out;
  }
  const int64_t n = static_cast<int64_t>(d[0]);
  if (count < 0) count = n - begin;
  if (begin < 0 || count < 0 || begin + count > n)
    throw Error(fmt::format("{}: rows [{}, {}) out of range (dataset has {})", m.where(name), begin,
                            begin + count, n));
  std::vector<int64_t> shape(d.begin(), d.end());
  shape[0] = count;
  // Our writer stores every row it appends (no compression, no unwritten chunks), so a read can
  // never need more bytes than the file holds: a larger extent is damage, refused before any
  // allocation.
  uint64_t bytes = c10::elementSize(dtype);
  bool overflow = false;
  for (int64_t s : shape) overflow |= __builtin_mul_overflow(bytes, static_cast<uint64_t>(s), &bytes);
  hsize_t file_bytes = 0;
  H5Fget_filesize(m.file.get(), &file_bytes);
  if (overflow || bytes > file_bytes)
    throw Error(fmt::format("{}: {} rows of [{}] {} are more bytes than the whole file ({}): damaged",
                            m.where(name), count, fmt::join(d.begin() + 1, d.end(), ", "),
                            c10::toString(dtype), file_bytes));
  auto out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (count == 0) return out;
  std::vector<hsize_t> offset(d.size(), 0), extent = d;
  offset[0] = static_cast<hsize_t>(begin);
  extent[0] = static_cast<hsize_t>(count);
  Id file_space(H5Dget_space(set.get()), H5Sclose);
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, extent.data(), nullptr);
  Id mem_space(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), H5Sclose);
  m.check(H5Dread(set.get(), memory_type, mem_space.get(), file_space.get(), H5P_DEFAULT, out.data_ptr()),
          name, "read rows");
  return out;
}

std::optional<std::string> File::string_attribute(const std::string& object, const std::string& name) const {
  auto& m = *impl_;
  if (!m.exists(object)) return std::nullopt;
  Id obj(H5Oopen(m.file.get(), object.empty() ? "/" : object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj.ok() || H5Aexists(obj.get(), name.c_str()) <= 0) return std::nullopt;
  Id attr(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw Error(fmt::format("{}: attribute '{}' is not a string", m.where(object), name));
  if (H5Tis_variable_str(type.get()) > 0) {
    auto mem = string_type();
    char* p = nullptr;
    m.check(H5Aread(attr.get(), mem.get(), &p), object, "read attribute " + name);
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  std::string out(H5Tget_size(type.get()), '\0');
  m.check(H5Aread(attr.get(), type.get(), out.data()), object, "read attribute " + name);
  return out.substr(0, out.find('\0'));
}

std::vector<std::string> File::children(const std::string& group) const {
  auto& m = *impl_;
  std::vector<std::string> out;
  if (!m.exists(group)) return out;
  Id g(H5Gopen2(m.file.get(), group.empty() ? "/" : group.c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) throw Error(fmt::format("{} is not a group", m.where(group)));
  H5G_info_t info;
  m.check(H5Gget_info(g.get(), &info), group, "list the group");
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string name(static_cast<size_t>(std::max<ssize_t>(len, 0)), '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void write_h5md_header(File& file, const Provenance& provenance) {
  const char* user = std::getenv("USER");
  file.set_attribute("h5md", "version", std::vector<int64_t>{1, 1});
  file.set_attribute("h5md/author", "name", provenance.author.empty() ? std::string(user ? user : "unknown")
                                                                        : provenance.author);
  file.set_attribute("h5md/creator", "name", provenance.creator);
  file.set_attribute("h5md/creator", "version",
                     provenance.creator_version.empty() ? version_string() : provenance.creator_version);
}

void define_particle_group(File& file, const ParticleGroupSpec& spec) {
  if (spec.capacity <= 0) throw Error(fmt::format("{}: particle group '{}' needs a capacity > 0", file.path(), spec.name));
  if (spec.boundary != "none" && spec.boundary != "periodic")
    throw Error(fmt::format("{}: boundary '{}' must be none or periodic", file.path(), spec.boundary));
  const std::string box = "particles/" + spec.name + "/box";
  file.set_attribute(box, "dimension", int64_t{3});
  file.set_attribute(box, "boundary", std::vector<std::string>(3, spec.boundary));
  file.set_attribute("particles/" + spec.name, "capacity", spec.capacity);
  if (spec.max_bonds > 0)  // H5MD: a connectivity element names the particle group it indexes
    file.set_attribute("connectivity/" + spec.name + "_bonds", "particles_group", "/particles/" + spec.name);
}

void append_structures(File& file, const ParticleGroupSpec& spec, const std::vector<StructureSample>& samples) {
  if (samples.empty()) return;
  const auto n = static_cast<int64_t>(samples.size());
  const int64_t cap = spec.capacity, max_bonds = std::max<int64_t>(spec.max_bonds, 1);
  auto pos = torch::full({n, cap, 3}, std::numeric_limits<float>::quiet_NaN(), torch::kFloat32);
  auto species = torch::full({n, cap}, -1, torch::kInt64);
  auto bonds = torch::full({n, max_bonds, 2}, -1, torch::kInt64);
  auto edges = torch::zeros({n, 3, 3}, torch::kFloat64);
  auto counts = torch::empty({n}, torch::kInt64), index = torch::empty({n}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    const auto& s = samples[i];
    const std::string what = fmt::format("{}: sample {} of group '{}'", file.path(), s.index, spec.name);
    if (s.positions.dim() != 2 || s.positions.size(1) != 3)
      throw Error(what + ": positions must be [atoms, 3]");
    const int64_t atoms = s.positions.size(0);
    if (atoms > cap) throw Error(fmt::format("{}: {} atoms exceed the group's capacity {}", what, atoms, cap));
    if (s.species.numel() != atoms) throw Error(fmt::format("{}: {} species for {} atoms", what, s.species.numel(), atoms));
    pos[i].narrow(0, 0, atoms).copy_(s.positions);
    species[i].narrow(0, 0, atoms).copy_(s.species.reshape({atoms}));
    if (s.bonds.defined() && s.bonds.numel()) {
      if (s.bonds.dim() != 2 || s.bonds.size(1) != 2) throw Error(what + ": bonds must be [bonds, 2]");
      if (s.bonds.size(0) > max_bonds || spec.max_bonds <= 0)
        throw Error(fmt::format("{}: {} bonds exceed the group's capacity {}", what, s.bonds.size(0), spec.max_bonds));
      bonds[i].narrow(0, 0, s.bonds.size(0)).copy_(s.bonds);
    }
    if (spec.boundary == "periodic") {
      if (!s.edges.defined() || s.edges.sizes() != torch::IntArrayRef({3, 3}))
        throw Error(what + ": a periodic group needs edges [3, 3]");
      edges[i].copy_(s.edges);
    }
    counts[i] = atoms;
    index[i] = s.index;
  }
  const std::string group = "particles/" + spec.name;
  file.append_frames(group + "/position", pos, index);
  file.append_frames(group + "/species", species, index);
  if (spec.boundary == "periodic") file.append_frames(group + "/box/edges", edges, index);
  if (spec.max_bonds > 0) {
    file.append_frames("connectivity/" + spec.name + "_bonds", bonds, index);
  }
  append_observable(file, spec.name + "/atom_count", counts, index);
}

void append_sample_records(File& file, const torch::Tensor& indices, const torch::Tensor& seeds,
                           const torch::Tensor& valid) {
  if (indices.dim() != 1 || seeds.sizes() != indices.sizes() || valid.sizes() != indices.sizes())
    throw Error(fmt::format("{}: sample records need index, seed and valid of equal length", file.path()));
  file.append_rows("samples/valid", valid.to(torch::kUInt8), 1024);
  file.append_rows("samples/seed", seeds.to(torch::kInt64), 1024, /*as_uint64=*/true);
  file.append_rows("samples/index", indices.to(torch::kInt64), 1024);  // last: the commit record
}

void append_observable(File& file, const std::string& name, const torch::Tensor& values,
                       const torch::Tensor& samples) {
  file.append_frames("observables/" + name, values, samples);
}

}  // namespace dit::h5md
