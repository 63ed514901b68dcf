// PNG grids through libpng, with generation parameters in tEXt chunks (the "parameters" key
// follows the convention of stable-diffusion front-ends).
#include <dit/error.h>
#include <dit/image.h>
#include <dit/runtime.h>
#include <fmt/format.h>
#include <png.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace dit {

namespace {
constexpr png_uint_32 kMaxPngSide = 1 << 16;
constexpr int64_t kMaxPngBytes = int64_t{1} << 28;
constexpr png_alloc_size_t kMaxPngChunkBytes = 1 << 24;

// libpng often gives the reason as a warning and then a generic error ("Invalid IHDR data"):
// the reader keeps the last warning (error_ptr) to name the reason in its message.
void png_error_throw(png_structp png, png_const_charp msg) {
  const auto* warning = static_cast<const std::string*>(png_get_error_ptr(png));
  if (warning && !warning->empty()) throw Error(fmt::format("{} ({})", msg, *warning));
  throw Error(msg);
}
void png_warning_ignore(png_structp, png_const_charp) {}
void png_warning_keep(png_structp png, png_const_charp msg) {
  if (auto* warning = static_cast<std::string*>(png_get_error_ptr(png))) *warning = msg;
}

void append_bytes(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), n);
}
void flush_nothing(png_structp) {}
}  // namespace

void write_png_grid(const std::string& path, const torch::Tensor& images_in, int64_t nrow,
                    const std::vector<std::pair<std::string, std::string>>& text,
                    int64_t padding) {
  if (images_in.dim() != 4 || (images_in.size(1) != 1 && images_in.size(1) != 3))
    throw Error(fmt::format("{}: images must be [B, 1|3, H, W], got {} dims", path, images_in.dim()));
  auto images = images_in.detach().to(torch::kFloat32).clamp(0, 1);
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  nrow = std::max<int64_t>(1, std::min(nrow, B));
  const int64_t rows = (B + nrow - 1) / nrow;
  const int64_t gh = rows * (H + padding) + padding, gw = nrow * (W + padding) + padding;
  auto grid = torch::zeros({gh, gw, C}, torch::kUInt8);
  auto pixels = (images * 255.0).round().to(torch::kUInt8).permute({0, 2, 3, 1});  // [B, H, W, C]
  for (int64_t i = 0; i < B; ++i) {
    int64_t r = i / nrow, c = i % nrow;
    grid.narrow(0, padding + r * (H + padding), H).narrow(1, padding + c * (W + padding), W)
        .copy_(pixels[i]);
  }

  std::string bytes;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, png_error_throw,
                                            png_warning_ignore);
  png_infop info = png_create_info_struct(png);
  std::unique_ptr<png_struct, void (*)(png_structp)> guard(png, [](png_structp p) {
    png_destroy_write_struct(&p, nullptr);
  });
  try {
    png_set_write_fn(png, &bytes, append_bytes, flush_nothing);
    png_set_IHDR(png, info, static_cast<png_uint_32>(gw), static_cast<png_uint_32>(gh), 8,
                 C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    std::vector<png_text> chunks(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      std::memset(&chunks[i], 0, sizeof(png_text));
      chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
      chunks[i].key = const_cast<char*>(text[i].first.c_str());
      chunks[i].text = const_cast<char*>(text[i].second.c_str());
      chunks[i].text_length = text[i].second.size();
    }
    if (!chunks.empty()) png_set_text(png, info, chunks.data(), static_cast<int>(chunks.size()));
    png_write_info(png, info);
    auto* base = grid.data_ptr<uint8_t>();
    for (int64_t y = 0; y < gh; ++y) png_write_row(png, base + y * gw * C);
    png_write_end(png, info);
    png_destroy_info_struct(png, &info);
  } catch (const Error& e) {
    png_destroy_info_struct(png, &info);
    throw Error(fmt::format("{}: PNG encoding failed: {}", path, e.what()));
  }
  write_file_atomic(path, bytes);
}

namespace {
// Walks the chunk headers (length, type) before libpng sees the file: some libpng paths in
// png_read_info allocate a chunk's declared length whatever png_set_chunk_malloc_max says (a
// fuzzed 1 KB file asked for 2 GB). Only IDAT may exceed kMaxPngChunkBytes (it is streamed).
void check_chunk_lengths(FILE* f, const std::string& path) {
  unsigned char head[8];
  if (std::fseek(f, 8, SEEK_SET) != 0) return;  // the signature is libpng's to check
  while (std::fread(head, 1, 8, f) == 8) {
    const uint32_t length = (uint32_t{head[0]} << 24) | (uint32_t{head[1]} << 16) |
                            (uint32_t{head[2]} << 8) | uint32_t{head[3]};
    const std::string type(reinterpret_cast<const char*>(head + 4), 4);
    const bool idat = type == "IDAT";
    if (length > 0x7fffffffu || (!idat && length > kMaxPngChunkBytes))
      throw Error(fmt::format("{}: PNG chunk '{}' declares {} bytes (limit {})", path,
                              fmt::format("{:?}", type).substr(1, 4), length,
                              idat ? 0x7fffffffu : kMaxPngChunkBytes));
    if (type == "IEND" || std::fseek(f, static_cast<long>(length) + 4, SEEK_CUR) != 0) break;
  }
  std::rewind(f);
}
}  // namespace

PngImage read_png(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) throw Error(fmt::format("{}: cannot open", path));
  check_chunk_lengths(file.get(), path);
  std::string last_warning;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &last_warning, png_error_throw,
                                           png_warning_keep);
  png_infop info = png_create_info_struct(png);
  std::unique_ptr<png_struct, std::function<void(png_structp)>> guard(
      png, [&info](png_structp p) { png_destroy_read_struct(&p, &info, nullptr); });
  PngImage img;
  try {
    png_init_io(png, file.get());
    // A damaged header can declare any size up to 2^31 - 1: bound it before allocating.
    png_set_user_limits(png, kMaxPngSide, kMaxPngSide);
    // Nor may an ancillary chunk (tEXt ...) claim gigabytes: libpng would allocate them.
    png_set_chunk_malloc_max(png, kMaxPngChunkBytes);
    png_read_info(png, info);
    png_set_strip_16(png);
    png_set_packing(png);
    png_set_expand(png);
    const int passes = png_set_interlace_handling(png);  // Adam7: 7 passes over all rows
    png_read_update_info(png, info);
    img.width = png_get_image_width(png, info);
    img.height = png_get_image_height(png, info);
    img.channels = png_get_channels(png, info);
    const int64_t row = img.width * img.channels;
    if (row * img.height > kMaxPngBytes)
      throw Error(fmt::format("{}x{}x{} pixels exceed the {}-byte limit", img.width, img.height,
                              img.channels, kMaxPngBytes));
    // Rows are stored as they decode, so a header claiming a large image over little data
    // costs only what decodes (interlaced images need every row from the first pass).
    std::vector<uint8_t> pixels(passes > 1 ? static_cast<size_t>(row * img.height) : 0);
    for (int pass = 0; pass < passes; ++pass)
      for (int64_t y = 0; y < img.height; ++y) {
        if (pass == 0 && passes == 1) pixels.resize(static_cast<size_t>((y + 1) * row));
        png_read_row(png, pixels.data() + y * row, nullptr);
      }
    png_read_end(png, info);
    img.pixels = torch::empty({img.height, img.width, img.channels}, torch::kUInt8);
    if (!pixels.empty()) std::memcpy(img.pixels.data_ptr<uint8_t>(), pixels.data(), pixels.size());
    png_textp text = nullptr;
    int n = png_get_text(png, info, &text, nullptr);
    for (int i = 0; i < n; ++i) img.text.emplace_back(text[i].key, std::string(text[i].text, text[i].text_length));
  } catch (const Error& e) {
    throw Error(fmt::format("{}: not a readable PNG: {}", path, e.what()));
  }
  return img;
}

}  // namespace dit
