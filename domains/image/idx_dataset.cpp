// IDX reader (LeCun's MNIST format, also used by Fashion-MNIST):
//   magic [0, 0, type, ndims], ndims big-endian u32 sizes, then the data (type 0x08 = uint8).
#include <dit/error.h>
#include <dit/image.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join (in ranges.h from fmt 11 on)
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <dit/fs.h>
#include <fstream>

namespace dit {

namespace {
// gzread reads plain files unchanged, so one reader serves .gz and raw IDX.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), f_(gzopen(path.c_str(), "rb")) {
    if (!f_) throw Error(fmt::format("{}: cannot open", path));
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Appends up to n bytes to out; returns how many were read (fewer only at the end).
  size_t read(std::string& out, size_t n) {
    size_t got = 0;
    char buf[1 << 16];
    while (got < n) {
      const int want = static_cast<int>(std::min(n - got, sizeof buf));
      const int r = gzread(f_, buf, static_cast<unsigned>(want));
      if (r < 0) fail();
      if (r == 0) break;
      out.append(buf, static_cast<size_t>(r));
      got += static_cast<size_t>(r);
    }
    int err = 0;
    gzerror(f_, &err);
    if (err != Z_OK && err != Z_STREAM_END) fail();
    return got;
  }

 private:
  [[noreturn]] void fail() {
    int err = 0;
    const char* msg = gzerror(f_, &err);
    throw Error(fmt::format("{}: corrupt gzip stream: {}", path_, msg && *msg ? msg : "unknown"));
  }
  std::string path_;
  gzFile f_;
};
}  // namespace

torch::Tensor read_idx(const std::string& path) {
  // Read only as much as the header declares (plus one byte to detect trailing data): a
  // damaged size or a gzip bomb cannot make us hold more than the declared data.
  GzReader in(path);
  std::string bytes;
  in.read(bytes, 4);
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  if (bytes.size() < 4)
    throw Error(fmt::format("{}: IDX header truncated ({} bytes)", path, bytes.size()));
  if (u8(0) != 0 || u8(1) != 0)
    throw Error(fmt::format("{}: bad IDX magic (first two bytes must be 0)", path));
  if (u8(2) != 0x08)
    throw Error(fmt::format("{}: IDX type code 0x{:02x} unsupported (expected 0x08, uint8)", path, u8(2)));
  const size_t ndims = u8(3);
  if (ndims < 1 || ndims > 4)
    throw Error(fmt::format("{}: IDX has {} dimensions, expected 1 to 4", path, ndims));
  if (in.read(bytes, 4 * ndims) < 4 * ndims)
    throw Error(fmt::format("{}: IDX dimension sizes truncated", path));
  std::vector<int64_t> dims;
  size_t total = 1;
  for (size_t d = 0; d < ndims; ++d) {
    size_t o = 4 + 4 * d;
    uint32_t size = (uint32_t{u8(o)} << 24) | (uint32_t{u8(o + 1)} << 16) |
                    (uint32_t{u8(o + 2)} << 8) | uint32_t{u8(o + 3)};
    if (size == 0 || size > (1u << 28))
      throw Error(fmt::format("{}: IDX dimension {} has absurd size {}", path, d, size));
    dims.push_back(size);
    total *= size;
    if (total > (size_t{1} << 34)) throw Error(fmt::format("{}: IDX data too large", path));
  }
  const size_t header = 4 + 4 * ndims;
  const size_t got = in.read(bytes, total + 1);
  if (got != total)
    throw Error(fmt::format("{}: IDX data has {}{} bytes, dimensions [{}] need {}", path,
                            got > total ? "more than " : "", std::min(got, total), fmt::join(dims, ", "),
                            total));
  auto out = torch::empty(dims, torch::kUInt8);
  std::memcpy(out.data_ptr(), bytes.data() + header, total);
  return out;
}

std::vector<std::string> dataset_class_names(const std::string& name) {
  if (name == "fashion-mnist")
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  if (name == "mnist") return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  throw Error(fmt::format("unknown dataset '{}': expected fashion-mnist or mnist", name));
}

std::string default_dataset_root(const std::string& name) {
  if (name == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  if (name == "mnist") return data_dir() + "/mnist";
  dataset_class_names(name);  // throws for unknown names
  return "";
}

ImageDataset load_image_dataset(const std::string& name, const std::string& split,
                                const std::string& root_in) {
  if (split != "train" && split != "test")
    throw Error(fmt::format("dataset split '{}': expected train or test", split));
  ImageDataset ds;
  ds.class_names = dataset_class_names(name);
  std::string root = root_in.empty() ? default_dataset_root(name) : root_in;
  std::string prefix = split == "train" ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const std::string& candidate : {root + "/" + stem + ".gz", root + "/" + stem})
      if (dit::fs::exists(candidate)) return candidate;
    throw Error(fmt::format(
        "{}: dataset file {}[.gz] not found (install it: scripts/install-deps.sh for "
        "fashion-mnist, scripts/get-mnist.sh for mnist)",
        root, stem));
  };
  std::string images_path = find(prefix + "-images-idx3-ubyte");
  std::string labels_path = find(prefix + "-labels-idx1-ubyte");
  ds.images = read_idx(images_path);
  ds.labels = read_idx(labels_path).to(torch::kLong);
  if (ds.images.dim() != 3)
    throw Error(fmt::format("{}: expected [N, H, W] images, got {} dimensions", images_path, ds.images.dim()));
  if (ds.labels.dim() != 1 || ds.labels.size(0) != ds.images.size(0))
    throw Error(fmt::format("{}: {} labels for {} images in {}", labels_path,
                            ds.labels.numel(), ds.images.size(0), images_path));
  if (ds.labels.max().item<int64_t>() >= static_cast<int64_t>(ds.class_names.size()))
    throw Error(fmt::format("{}: label {} out of range for {} classes", labels_path,
                            ds.labels.max().item<int64_t>(), ds.class_names.size()));
  return ds;
}

torch::Tensor images_to_model_space(const torch::Tensor& images_u8) {
  return (images_u8.to(torch::kFloat32) / 127.5 - 1.0).unsqueeze(1);  // [N, 1, H, W]
}

torch::Tensor model_space_to_pixels(const torch::Tensor& x) {
  return ((x.to(torch::kFloat32) + 1.0) / 2.0).clamp(0.0, 1.0);
}

}  // namespace dit
