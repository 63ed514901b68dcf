// Image domain I/O against real files: the Debian Fashion-MNIST IDX files, PNG and HDF5.
#include <dit/error.h>
#include <dit/image.h>
#include <dit/runtime.h>
#include <gtest/gtest.h>

#include <dit/fs.h>
#include <fstream>

#ifdef DIT_HAVE_HDF5
#include <hdf5.h>
#endif

#include "tests/file_bytes.h"

namespace {

std::string image_temp_path(const std::string& name) {
  return (dit::fs::temp_directory_path() / ("dit_image_test_" + name)).string();
}

using dit::test::read_bytes;
using dit::test::write_bytes;

TEST(Idx, ReadsFashionMnistFromTheDebianPackage) {
  auto test = dit::load_image_dataset("fashion-mnist", "test");
  EXPECT_EQ(test.images.sizes(), torch::IntArrayRef({10000, 28, 28}));
  EXPECT_EQ(test.labels.sizes(), torch::IntArrayRef({10000}));
  // Fashion-MNIST's test split is balanced: 1000 images per class.
  auto counts = torch::bincount(test.labels);
  EXPECT_TRUE(torch::equal(counts, torch::full({10}, 1000, torch::kLong)));
  EXPECT_EQ(test.class_names[9], "Ankle boot");
  auto x = dit::images_to_model_space(test.images.narrow(0, 0, 8));
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({8, 1, 28, 28}));
  EXPECT_GE(x.min().item<float>(), -1.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
}

TEST(Idx, DamagedFilesNameTheFileAndField) {
  const std::string good = read_bytes("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  ASSERT_FALSE(good.empty());
  const std::string raw_path = image_temp_path("labels.idx");
  // Decompress through the reader itself, then damage the raw bytes.
  auto labels = dit::read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  std::string raw = std::string("\0\0\x08\x01", 4) + std::string("\0\0\x27\x10", 4) +
                    std::string(reinterpret_cast<const char*>(labels.data_ptr<uint8_t>()), 10000);
  write_bytes(raw_path, raw);
  EXPECT_TRUE(torch::equal(dit::read_idx(raw_path), labels));

  struct Case {
    std::string name, bytes, expect;
  };
  std::vector<Case> cases = {
      {"empty", "", "truncated"},
      {"magic", "\x01" + raw.substr(1), "magic"},
      {"type", raw.substr(0, 2) + "\x0d" + raw.substr(3), "type code"},
      {"ndims", raw.substr(0, 3) + std::string(1, '\0') + raw.substr(4), "dimensions"},
      {"truncated data", raw.substr(0, raw.size() - 1), "need"},
      {"extra data", raw + "x", "need"},
      {"absurd size", raw.substr(0, 4) + "\x7f\xff\xff\xff" + raw.substr(8), "absurd"},
      {"truncated dims", raw.substr(0, 6), "truncated"},
      {"gzip garbage", good.substr(0, good.size() / 2), "gzip"},
  };
  for (const auto& c : cases) {
    const std::string path = image_temp_path("bad.idx");
    write_bytes(path, c.bytes);
    try {
      dit::read_idx(path);
      ADD_FAILURE() << c.name << ": expected dit::Error";
    } catch (const dit::Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    }
  }
  EXPECT_THROW(dit::load_image_dataset("fashion-mnist", "test", "/nonexistent"), dit::Error);
  EXPECT_THROW(dit::load_image_dataset("cifar", "test"), dit::Error);
}

TEST(Png, GridRoundTripWithTextChunk) {
  auto images = torch::rand({5, 1, 28, 28});
  const std::string path = image_temp_path("grid.png");
  dit::write_png_grid(path, images, 3, {{"parameters", "steps 30 seed 42"}});
  auto png = dit::read_png(path);
  EXPECT_EQ(png.width, 3 * 30 + 2);
  EXPECT_EQ(png.height, 2 * 30 + 2);
  EXPECT_EQ(png.channels, 1);
  ASSERT_EQ(png.text.size(), 1u);
  EXPECT_EQ(png.text[0].first, "parameters");
  EXPECT_EQ(png.text[0].second, "steps 30 seed 42");
  // Image 4 sits in row 1, column 1, quantised to 8 bits.
  auto tile = png.pixels.narrow(0, 32, 28).narrow(1, 32, 28).squeeze(2).to(torch::kFloat32) / 255;
  EXPECT_LE((tile - images[4][0]).abs().max().item<float>(), 0.5f / 255 + 1e-6f);
  EXPECT_TRUE(dit::test::temp_leftovers(path).empty());
  EXPECT_THROW(dit::read_png(image_temp_path("missing.png")), dit::Error);
  write_bytes(image_temp_path("bad.png"), "\x89PNG not really");
  EXPECT_THROW(dit::read_png(image_temp_path("bad.png")), dit::Error);
}

#ifdef DIT_HAVE_HDF5
TEST(Hdf5, ImageSamplesReadBack) {
  const std::string path = image_temp_path("samples.h5");
  dit::fs::remove(path);
  auto images = torch::randn({3, 1, 28, 28});
  images[1][0][3][4] = std::numeric_limits<float>::quiet_NaN();  // flagged invalid, still kept
  auto labels = torch::tensor({4, 5, 6}, torch::kLong);
  auto seeds = torch::tensor({11, 12, -13}, torch::kLong);  // -13: a uint64 above 2^63
  dit::write_image_samples_h5(path, images, labels, seeds, {{"sampler", {{"name", "heun"}, {"steps", 8}}}});
  dit::h5md::File f(path, dit::h5md::Mode::Read);
  EXPECT_TRUE(torch::equal(f.read("images/value").nan_to_num(7), images.nan_to_num(7)));
  EXPECT_TRUE(torch::equal(f.read("images/label"), labels));
  EXPECT_TRUE(torch::equal(f.read("samples/seed"), seeds));
  EXPECT_TRUE(torch::equal(f.read("samples/index"), torch::arange(3, torch::kLong)));
  EXPECT_TRUE(torch::equal(f.read("samples/valid"), torch::tensor({1, 0, 1}, torch::kUInt8)));
  EXPECT_EQ(f.string_attribute("parameters/sampler", "name").value(), "heun");
  EXPECT_EQ(f.string_attribute("h5md/creator", "name").value(), "dit-engine");
  EXPECT_TRUE(dit::test::temp_leftovers(path).empty());
  EXPECT_THROW(dit::write_image_samples_h5("/nonexistent/dir/x.h5", images, labels, seeds, {}),
               dit::Error);
}
#endif

}  // namespace
