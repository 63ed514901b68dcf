// Damaged PNG files: every variant gives a dit::Error naming the file and what is wrong (no
// command reads PNG today, so this goes through read_png; the CLI would print the same line).
// Also the regression inputs found by fuzzing (tests/fixtures/corrupt/*.png).
#include <dit/error.h>
#include <dit/image.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <dit/fs.h>
#include <fstream>
#include <string>
#include <vector>

#include "tests/file_bytes.h"

namespace {

namespace fs = dit::fs;

using dit::test::read_bytes;
using dit::test::write_bytes;

uint32_t crc32(const std::string& s) {  // the PNG chunk CRC (ISO 3309), bitwise
  uint32_t c = 0xffffffffu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

const std::string kSignature("\x89PNG\r\n\x1a\n", 8);

std::string ihdr(uint32_t w, uint32_t h, int depth, int color, int compression = 0,
                 int filter = 0, int interlace = 0) {
  return chunk("IHDR", be32(w) + be32(h) + std::string{static_cast<char>(depth),
                                                        static_cast<char>(color),
                                                        static_cast<char>(compression),
                                                        static_cast<char>(filter),
                                                        static_cast<char>(interlace)});
}

// A stored (uncompressed) zlib stream, so the tests need no zlib: header, one final stored
// block, Adler-32.
std::string zlib_stored(const std::string& raw) {
  std::string z("\x78\x01", 2);
  z += '\x01';
  const uint16_t len = static_cast<uint16_t>(raw.size());
  z += static_cast<char>(len & 0xff);
  z += static_cast<char>(len >> 8);
  z += static_cast<char>(~len & 0xff);
  z += static_cast<char>((~len >> 8) & 0xff);
  z += raw;
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  return z + be32((b << 16) | a);
}

// A valid 4x2 8-bit gray PNG (filter byte 0 per row), with a tEXt chunk.
std::string gray_png(const std::string& idat_raw = std::string("\0abcd\0efgh", 10)) {
  return kSignature + ihdr(4, 2, 8, 0) + chunk("tEXt", std::string("k\0v", 3)) +
         chunk("IDAT", zlib_stored(idat_raw)) + chunk("IEND", "");
}

class PngCorrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("dit_png_corrupt_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

void expect_png_error(const std::string& name, const std::string& path,
                      const std::vector<std::string>& expect) {
  SCOPED_TRACE(name);
  try {
    dit::read_png(path);
    ADD_FAILURE() << name << ": read without error";
  } catch (const dit::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    for (const auto& s : expect) EXPECT_NE(msg.find(s), std::string::npos) << s << ": " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << name << ": not a dit::Error: " << e.what();
  }
}

TEST_F(PngCorrupt, DamagedVariantsNameTheFile) {
  const std::string good = gray_png();
  {  // the base is valid
    write_bytes(dir_ + "/good.png", good);
    auto img = dit::read_png(dir_ + "/good.png");
    EXPECT_EQ(img.width, 4);
    EXPECT_EQ(img.height, 2);
    EXPECT_EQ(img.pixels[1][3][0].item<int>(), 'h');
  }
  dit::write_png_grid(dir_ + "/grid.png", torch::rand({2, 1, 6, 6}), 2, {{"parameters", "x"}});
  const std::string grid = read_bytes(dir_ + "/grid.png");
  const size_t idat = good.find("IDAT") - 4;
  std::string crc_flip = good;
  crc_flip[8 + 4 + 4 + 13] ^= 0x01;  // IHDR CRC
  std::string data_flip = good;
  data_flip[idat + 8 + 9] ^= 0x20;  // a pixel inside the stored block: IDAT CRC mismatch
  std::string long_chunk = good;
  long_chunk.replace(idat, 4, be32(0x7ffffff0u));
  struct Case {
    std::string name, bytes;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"empty", "", {"not a readable PNG"}},
      {"signature only", kSignature, {"not a readable PNG"}},
      {"cut in IHDR", good.substr(0, 8 + 10), {"not a readable PNG"}},
      {"cut after IHDR", good.substr(0, 8 + 25), {"not a readable PNG"}},
      {"cut in IDAT", good.substr(0, idat + 12), {"not a readable PNG"}},
      {"no IEND", good.substr(0, good.size() - 12), {"not a readable PNG"}},
      {"IHDR CRC flipped", crc_flip, {"CRC"}},
      {"IDAT bit flip", data_flip, {"IDAT"}},
      {"chunk length absurd", long_chunk, {"not a readable PNG"}},
      {"width 0", kSignature + ihdr(0, 2, 8, 0) + good.substr(8 + 25), {"IHDR", "width"}},
      {"height 0", kSignature + ihdr(4, 0, 8, 0) + good.substr(8 + 25), {"IHDR", "height"}},
      {"width 2^31-1", kSignature + ihdr(0x7fffffffu, 2, 8, 0) + good.substr(8 + 25), {"IHDR", "width"}},
      {"65536 x 65536", kSignature + ihdr(65536, 65536, 8, 0) + good.substr(8 + 25), {"limit"}},
      {"bit depth 3", kSignature + ihdr(4, 2, 3, 0) + good.substr(8 + 25), {"bit depth"}},
      {"color type 5", kSignature + ihdr(4, 2, 8, 5) + good.substr(8 + 25), {"color type"}},
      {"compression 1", kSignature + ihdr(4, 2, 8, 0, 1) + good.substr(8 + 25), {"compression"}},
      {"interlace 2", kSignature + ihdr(4, 2, 8, 0, 0, 0, 2) + good.substr(8 + 25), {"interlace"}},
      {"palette without PLTE", kSignature + ihdr(4, 2, 8, 3) + good.substr(8 + 25), {"PLTE"}},
      {"no IDAT", kSignature + ihdr(4, 2, 8, 0) + chunk("IEND", ""), {"not a readable PNG"}},
      {"short image data", gray_png(std::string("\0ab", 3)), {"not a readable PNG"}},
      {"bad filter byte", gray_png(std::string("\x09" "abcd\0efgh", 10)), {"filter"}},
      {"JPEG", std::string("\xff\xd8\xff\xe0\0\x10JFIF\0", 11) + std::string(64, 'x'), {"PNG"}},
      {"safetensors", std::string("\x10\0\0\0\0\0\0\0{}              ", 24), {"PNG"}},
      {"grid cut in half", grid.substr(0, grid.size() / 2), {"not a readable PNG"}},
  };
  const std::string path = dir_ + "/bad.png";
  for (const auto& c : cases) {
    write_bytes(path, c.bytes);
    expect_png_error(c.name, path, c.expect);
  }
  fs::create_directories(dir_ + "/dir.png");
  expect_png_error("a directory", dir_ + "/dir.png", {});
  expect_png_error("absent", dir_ + "/absent.png", {"cannot open"});
  std::cout << "[ corrupt  ] PNG: " << cases.size() + 2 << " damaged variants\n";
}

// Inputs the fuzzers found (tests/fuzz/README.md): each must now be a clean dit::Error.
TEST(FuzzRegressions, CorruptFixturesAreCleanErrors) {
  const fs::path dir = fs::path(DIT_TEST_FIXTURES) / "corrupt";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no " << dir;
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string p = e.path().string(), ext = e.path().extension().string();
    SCOPED_TRACE(p);
    if (ext == ".png") {
      expect_png_error(p, p, {});
      ++n;
    } else if (ext == ".idx" || ext == ".gz") {
      try {
        dit::read_idx(p);
        ADD_FAILURE() << p << ": read without error";
      } catch (const dit::Error& err) {
        const std::string msg = err.what();
        EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
        EXPECT_NE(msg.find(p), std::string::npos) << msg;
      } catch (const std::exception& err) {
        ADD_FAILURE() << p << ": not a dit::Error: " << err.what();
      }
      ++n;
    }
  }
  EXPECT_GT(n, 0) << "no PNG/IDX inputs in " << dir;  // an empty folder tests nothing
  std::cout << "[ fuzz     ] " << n << " PNG/IDX regression inputs\n";
}

}  // namespace
