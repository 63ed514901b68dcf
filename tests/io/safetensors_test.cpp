// safetensors reader/writer: round trips, byte-level compatibility with the reference format
// (hand-built files in, an independent parser on our output), corrupt files, view lifetime,
// atomic writes, and a randomized corruption loop that must never crash.
#include <dit/error.h>
#include <dit/safetensors.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <dit/fs.h>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/file_bytes.h"

namespace fs = dit::fs;
using json = nlohmann::json;

namespace {

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

uint64_t read_le64(const std::string& s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[i])) << (8 * i);
  return v;
}

std::string bytes_of(const void* p, size_t n) {
  return std::string(static_cast<const char*>(p), n);
}

template <typename T>
std::string bytes_of_values(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s += bytes_of(&v, sizeof(T));
  return s;
}

// A safetensors file from a header text and a data section (header not padded unless asked).
std::string build_file(const std::string& header, const std::string& data, size_t pad = 0) {
  const std::string h = header + std::string(pad, ' ');
  return le64(h.size()) + h + data;
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << p;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::string tensor_bytes(const torch::Tensor& t) {
  auto c = t.contiguous();
  return bytes_of(c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size());
}

// Tensors of every supported dtype, plus empty tensors and 0-d scalars.
dit::TensorMap every_dtype() {
  torch::manual_seed(7);
  dit::TensorMap m;
  m["t_F32"] = torch::randn({2, 3});
  m["t_F64"] = torch::randn({3, 2}, torch::kDouble);
  m["t_F16"] = torch::randn({4}).to(torch::kHalf);
  m["t_BF16"] = torch::randn({2, 2, 2}).to(torch::kBFloat16);
  m["t_I64"] = torch::randint(-1000000, 1000000, {5}, torch::kLong);
  m["t_I32"] = torch::randint(-100000, 100000, {2, 3}, torch::kInt);
  m["t_I16"] = torch::randint(-30000, 30000, {3}, torch::kShort);
  m["t_I8"] = torch::randint(-128, 128, {7}, torch::kChar);
  m["t_U8"] = torch::randint(0, 256, {3, 3}, torch::kByte);
  m["t_BOOL"] = torch::randint(0, 2, {9}).to(torch::kBool);
  m["empty_F32"] = torch::empty({0});
  m["empty_I16"] = torch::empty({3, 0, 2}, torch::kShort);
  m["empty_BOOL"] = torch::empty({0, 4}, torch::kBool);
  m["scalar_F64"] = torch::tensor(3.25, torch::kDouble);
  m["scalar_U8"] = torch::tensor(200, torch::kByte).reshape({});
  m["scalar_BOOL"] = torch::tensor(true);
  return m;
}

// An independent reading of a file, checking what the reference implementation checks: the
// header is space-padded to a multiple of 8, tensors tile the data section with no gaps.
struct ParsedEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};
struct Parsed {
  uint64_t header_len = 0;
  std::map<std::string, ParsedEntry> entries;
  std::map<std::string, std::string> metadata;
  std::string data;
};

Parsed independent_parse(const std::string& bytes) {
  Parsed out;
  EXPECT_GE(bytes.size(), 8u);
  out.header_len = read_le64(bytes);
  EXPECT_EQ(out.header_len % 8, 0u) << "header not padded to a multiple of 8";
  EXPECT_LE(8 + out.header_len, bytes.size());
  const std::string header = bytes.substr(8, out.header_len);
  EXPECT_EQ(header.front(), '{');
  const auto last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}') << "padding must be spaces after the JSON object";
  EXPECT_LT(header.size() - (last + 1), 8u);
  const json j = json::parse(header);
  out.data = bytes.substr(8 + out.header_len);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [k, v] : j.items()) {
    if (k == "__metadata__") {
      out.metadata = v.get<std::map<std::string, std::string>>();
      continue;
    }
    ParsedEntry e{v.at("dtype").get<std::string>(), v.at("shape").get<std::vector<int64_t>>(),
                  v.at("data_offsets").at(0).get<uint64_t>(),
                  v.at("data_offsets").at(1).get<uint64_t>()};
    ranges.emplace_back(e.begin, e.end);
    out.entries[k] = e;
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t pos = 0;
  for (const auto& [b, e] : ranges) {
    EXPECT_EQ(b, pos) << "gap or overlap in the data section";
    pos = e;
  }
  EXPECT_EQ(pos, out.data.size()) << "data section not exactly covered";
  return out;
}

class SafeTensors : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("dit_safetensors_") + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `bytes` to <name>.safetensors and expects opening it to throw a dit::Error whose
  // message names the file and contains every one of `needles`.
  ::testing::AssertionResult corrupt(const std::string& name, const std::string& bytes,
                                     std::initializer_list<std::string> needles) {
    const std::string p = path(name + ".safetensors");
    write_bytes(p, bytes);
    ++corrupt_count_;
    try {
      dit::SafeTensorsFile f(p);
      return ::testing::AssertionFailure() << name << ": opened without error";
    } catch (const dit::Error& e) {
      const std::string what = e.what();
      if (what.find(p) == std::string::npos)
        return ::testing::AssertionFailure() << name << ": message lacks the path: " << what;
      for (const auto& n : needles)
        if (what.find(n) == std::string::npos)
          return ::testing::AssertionFailure()
                 << name << ": message lacks '" << n << "': " << what;
      return ::testing::AssertionSuccess();
    } catch (const std::exception& e) {
      return ::testing::AssertionFailure() << name << ": not a dit::Error: " << e.what();
    }
  }

  fs::path dir_;
  int corrupt_count_ = 0;
};

// ---- round trips ---------------------------------------------------------------------------

TEST(SafeTensorsDtype, NamesRoundTrip) {
  for (const char* n : {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"})
    EXPECT_EQ(dit::safetensors_dtype_name(dit::safetensors_dtype(n)), n);
  EXPECT_EQ(dit::safetensors_dtype("BF16"), torch::kBFloat16);
  EXPECT_EQ(dit::safetensors_dtype_name(torch::kBool), "BOOL");
  try {
    dit::safetensors_dtype("F8_E4M3");
    FAIL() << "no throw";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("F8_E4M3"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos);  // lists supported ones
  }
  EXPECT_THROW(dit::safetensors_dtype_name(torch::kComplexFloat), dit::Error);
}

TEST_F(SafeTensors, RoundTripEveryDtype) {
  const auto tensors = every_dtype();
  const dit::Metadata meta{{"format", "pt"}, {"note", "unicode \xc3\xbc \xe2\x9c\x93"},
                           {"empty", ""}};
  const std::string p = path("all.safetensors");
  dit::save_safetensors(p, tensors, meta);

  dit::Metadata meta_back;
  const auto loaded = dit::load_safetensors(p, &meta_back);
  EXPECT_EQ(meta_back, meta);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    const auto& l = loaded.at(name);
    EXPECT_EQ(l.scalar_type(), t.scalar_type());
    EXPECT_EQ(l.sizes(), t.sizes());
    EXPECT_TRUE(l.is_contiguous());
    EXPECT_EQ(tensor_bytes(l), tensor_bytes(t));
  }

  dit::SafeTensorsFile f(p);
  EXPECT_EQ(f.path(), p);
  EXPECT_EQ(f.metadata(), meta);
  std::vector<std::string> names;
  for (const auto& kv : tensors) names.push_back(kv.first);
  EXPECT_EQ(f.names(), names);  // sorted
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(f.contains(name));
    EXPECT_EQ(f.shape(name), t.sizes().vec());
    EXPECT_EQ(f.dtype_name(name), dit::safetensors_dtype_name(t.scalar_type()));
    const auto v = f.view(name);
    EXPECT_EQ(v.scalar_type(), t.scalar_type());
    EXPECT_EQ(v.sizes(), t.sizes());
    EXPECT_EQ(tensor_bytes(v), tensor_bytes(t));
    if (t.numel() > 0) {
      // Our writer aligns every tensor to its element size, so views alias the mapping.
      EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data_ptr()) % t.element_size(), 0u);
      EXPECT_EQ(f.view(name).data_ptr(), v.data_ptr()) << "view() should not copy";
      EXPECT_NE(loaded.at(name).data_ptr(), v.data_ptr()) << "load() must copy";
    }
  }
  EXPECT_FALSE(f.contains("nope"));
  EXPECT_THROW(f.view("nope"), dit::Error);
  EXPECT_THROW(f.shape("nope"), dit::Error);
  EXPECT_THROW(f.dtype_name("nope"), dit::Error);
}

TEST_F(SafeTensors, EmptyFileAndNoMetadata) {
  const std::string p = path("empty.safetensors");
  dit::save_safetensors(p, {});
  const std::string bytes = read_bytes(p);
  EXPECT_EQ(bytes, le64(8) + "{}      ");
  dit::SafeTensorsFile f(p);
  EXPECT_TRUE(f.names().empty());
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.load().empty());
}

TEST_F(SafeTensors, NonContiguousAndGradInputs) {
  dit::TensorMap m;
  m["transposed"] = torch::arange(12, torch::kFloat).reshape({3, 4}).t();
  m["strided"] = torch::arange(40, torch::kLong).slice(0, 2, 30, 3);
  m["expanded"] = torch::tensor({1, 2, 3}, torch::kInt).expand({2, 3});
  m["grad"] = torch::ones({2}, torch::TensorOptions().requires_grad(true));
  const std::string p = path("nc.safetensors");
  dit::save_safetensors(p, m);
  const auto l = dit::load_safetensors(p);
  for (const auto& [name, t] : m) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(torch::equal(l.at(name), t.detach()));
  }
}

// ---- byte-level compatibility ----------------------------------------------------------------

// A file laid out by hand as the reference implementation describes it, read back with every
// header padding 0..7 (so the data section starts at every alignment: unaligned tensors must
// still read correctly through view(), which copies them).
TEST_F(SafeTensors, ReadsHandBuiltFile) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]},)"
      R"("c":{"dtype":"I16","shape":[1],"data_offsets":[11,13]},)"
      R"("d":{"dtype":"BF16","shape":[],"data_offsets":[13,15]},)"
      R"("e":{"dtype":"I64","shape":[0],"data_offsets":[15,15]},)"
      R"("f":{"dtype":"F64","shape":[1,1],"data_offsets":[15,23]},)"
      R"("g":{"dtype":"BOOL","shape":[2],"data_offsets":[23,25]}})";
  std::string data = bytes_of_values<float>({1.5f, -2.0f});
  data += std::string("\x01\x02\x03", 3);
  data += std::string("\xfe\xff", 2);  // I16 -2
  data += std::string("\x80\x3f", 2);  // BF16 1.0
  data += bytes_of_values<double>({-0.125});
  data += std::string("\x01\x00", 2);
  for (size_t pad = 0; pad < 8; ++pad) {
    SCOPED_TRACE(pad);
    const std::string p = path("hand.safetensors");
    write_bytes(p, build_file(header, data, pad));
    dit::SafeTensorsFile f(p);
    EXPECT_EQ(f.metadata().at("format"), "pt");
    EXPECT_EQ(f.names(), (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"}));
    for (int pass = 0; pass < 2; ++pass) {
      dit::TensorMap t;
      if (pass == 0) {
        for (const auto& n : f.names()) t[n] = f.view(n);
      } else {
        t = f.load();
      }
      EXPECT_TRUE(torch::equal(t.at("a"), torch::tensor({1.5f, -2.0f})));
      EXPECT_TRUE(torch::equal(t.at("b"), torch::tensor({1, 2, 3}, torch::kByte)));
      EXPECT_TRUE(torch::equal(t.at("c"), torch::tensor({-2}, torch::kShort)));
      EXPECT_EQ(t.at("d").dim(), 0);
      EXPECT_EQ(t.at("d").scalar_type(), torch::kBFloat16);
      EXPECT_EQ(t.at("d").item<float>(), 1.0f);
      EXPECT_EQ(t.at("e").sizes().vec(), std::vector<int64_t>{0});
      EXPECT_EQ(t.at("e").scalar_type(), torch::kLong);
      EXPECT_EQ(t.at("f").sizes().vec(), (std::vector<int64_t>{1, 1}));
      EXPECT_EQ(t.at("f").item<double>(), -0.125);
      EXPECT_TRUE(torch::equal(t.at("g"), torch::tensor({true, false})));
    }
  }
}

TEST_F(SafeTensors, ToleratesGapsAndTrailingBytes) {
  // Not produced by the reference writer, but harmless: tensors simply skip the bytes.
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},)"
      R"("z":{"dtype":"U8","shape":[0],"data_offsets":[9,9]}})";
  const std::string p = path("gaps.safetensors");
  write_bytes(p, build_file(header, std::string("\x00\x00\x2a\x00\x00\x00\x00\x00\x00\x00", 10)));
  dit::SafeTensorsFile f(p);
  EXPECT_EQ(f.view("a").item<uint8_t>(), 42);
  EXPECT_EQ(f.view("z").numel(), 0);
}

// The writer's exact bytes: deterministic header (keys sorted), space padding to 8, data in
// the declared order.
TEST_F(SafeTensors, WriterExactBytes) {
  dit::TensorMap m;
  m["b"] = torch::tensor({7}, torch::kByte);
  m["a"] = torch::tensor({1.0f, 2.0f});
  const std::string p = path("exact.safetensors");
  dit::save_safetensors(p, m, {{"k", "v"}});
  std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("b":{"data_offsets":[8,9],"dtype":"U8","shape":[1]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string expected =
      le64(header.size()) + header + bytes_of_values<float>({1.0f, 2.0f}) + "\x07";
  EXPECT_EQ(read_bytes(p), expected);

  // Writing the same content again gives the same bytes.
  dit::save_safetensors(p, m, {{"k", "v"}});
  EXPECT_EQ(read_bytes(p), expected);
}

TEST_F(SafeTensors, WriterOutputParsesIndependently) {
  const auto tensors = every_dtype();
  const std::string p = path("indep.safetensors");
  dit::save_safetensors(p, tensors, {{"who", "dit"}});
  const Parsed parsed = independent_parse(read_bytes(p));
  EXPECT_EQ(parsed.metadata, (std::map<std::string, std::string>{{"who", "dit"}}));
  ASSERT_EQ(parsed.entries.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    const auto& e = parsed.entries.at(name);
    EXPECT_EQ(e.dtype, dit::safetensors_dtype_name(t.scalar_type()));
    EXPECT_EQ(e.shape, t.sizes().vec());
    EXPECT_EQ(e.end - e.begin, static_cast<uint64_t>(t.numel() * t.element_size()));
    EXPECT_EQ(e.begin % t.element_size(), 0u) << "tensor not aligned to its element size";
    EXPECT_EQ(parsed.data.substr(e.begin, e.end - e.begin), tensor_bytes(t));
  }
}

// ---- corrupt files -------------------------------------------------------------------------

TEST_F(SafeTensors, CorruptTruncated) {
  dit::TensorMap m;
  m["w"] = torch::randn({4, 4});
  m["b"] = torch::randn({4});
  const std::string p = path("valid.safetensors");
  dit::save_safetensors(p, m);
  const std::string good = read_bytes(p);
  const size_t n = read_le64(good);
  const size_t size = good.size();
  struct Cut {
    size_t len;
    const char* needle;
  };
  const Cut cuts[] = {
      {0, "shorter than the 8-byte"},   {1, "shorter than the 8-byte"},
      {7, "shorter than the 8-byte"},   {8, "beyond the end of the file"},
      {9, "beyond the end of the file"}, {8 + n / 2, "beyond the end of the file"},
      {8 + n - 1, "beyond the end of the file"}, {8 + n, "beyond the data section"},
      {8 + n + 1, "beyond the data section"},    {8 + n + 17, "beyond the data section"},
      {size - 4, "beyond the data section"},     {size - 1, "beyond the data section"},
  };
  for (const auto& c : cuts)
    EXPECT_TRUE(corrupt("cut" + std::to_string(c.len), good.substr(0, c.len), {c.needle}));
  EXPECT_TRUE(corrupt("cut_end", good.substr(0, size - 1), {"data_offsets end"}));
  std::cout << "[ corrupt  ] " << corrupt_count_ << " truncated variants\n";
}

TEST_F(SafeTensors, CorruptHeaderLength) {
  const std::string body = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const std::string rest = body + "x";
  EXPECT_TRUE(corrupt("huge", le64(uint64_t{1} << 62) + rest, {"header length", "limit"}));
  EXPECT_TRUE(corrupt("max", le64(~uint64_t{0}) + rest, {"header length", "limit"}));
  EXPECT_TRUE(corrupt("200MB", le64(200'000'000) + rest, {"header length", "limit"}));
  EXPECT_TRUE(corrupt("plus1", le64(rest.size() + 1) + rest, {"header length", "beyond"}));
  EXPECT_TRUE(corrupt("zero", le64(0) + rest, {"not valid JSON"}));
}

TEST_F(SafeTensors, CorruptJson) {
  const auto f = [](const std::string& h) { return build_file(h, std::string(16, '\0')); };
  EXPECT_TRUE(corrupt("unterminated", f(R"({"a":)"), {"not valid JSON"}));
  EXPECT_TRUE(corrupt("garbage", f(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} x)"),
                      {"not valid JSON"}));
  EXPECT_TRUE(corrupt("nul_pad", f(std::string("{}\0\0", 4)),
                      {"not valid JSON", "NUL byte at header offset 2"}));
  EXPECT_TRUE(corrupt("bad_utf8", f("{\"\xff\":{}}"), {"not valid JSON"}));
  EXPECT_TRUE(corrupt("array", f("[1,2]"), {"must be a JSON object", "array"}));
  EXPECT_TRUE(corrupt("string", f(R"("x")"), {"must be a JSON object"}));
  EXPECT_TRUE(corrupt("duplicate",
                      f(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                        R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})"),
                      {"duplicate key 'a'"}));
}

TEST_F(SafeTensors, CorruptEntries) {
  const auto f = [](const std::string& entry) {
    return build_file(R"({"x":)" + entry + "}", std::string(24, '\0'));
  };
  const auto C = [&](const std::string& name, const std::string& entry,
                     std::initializer_list<std::string> needles) {
    std::vector<std::string> n(needles);
    n.push_back("tensor 'x'");
    const std::string bytes = f(entry);
    const std::string p = path(name + ".safetensors");
    write_bytes(p, bytes);
    ++corrupt_count_;
    try {
      dit::SafeTensorsFile file(p);
      ADD_FAILURE() << name << ": opened without error";
    } catch (const dit::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(p), std::string::npos) << what;
      for (const auto& s : n) EXPECT_NE(what.find(s), std::string::npos) << name << ": " << what;
    }
  };
  C("not_object", "3", {"must be an object"});
  C("not_object2", R"(["F32"])", {"must be an object"});
  C("no_dtype", R"({"shape":[1],"data_offsets":[0,4]})", {"missing field 'dtype'"});
  C("no_shape", R"({"dtype":"F32","data_offsets":[0,4]})", {"missing field 'shape'"});
  C("no_offsets", R"({"dtype":"F32","shape":[1]})", {"missing field 'data_offsets'"});
  C("dtype_unknown", R"({"dtype":"F33","shape":[1],"data_offsets":[0,4]})",
    {"unknown dtype 'F33'", "F32, F16, BF16"});
  C("dtype_lower", R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", {"unknown dtype 'f32'"});
  C("dtype_u16", R"({"dtype":"U16","shape":[1],"data_offsets":[0,2]})", {"unknown dtype 'U16'"});
  C("dtype_number", R"({"dtype":5,"shape":[1],"data_offsets":[0,4]})", {"dtype must be a string"});
  C("shape_negative", R"({"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]})",
    {"shape[1] = -3"});
  C("shape_float", R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", {"shape[0] = 1.5"});
  C("shape_string", R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})", {"shape[0]"});
  C("shape_not_array", R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})",
    {"shape must be an array"});
  C("shape_huge_dim", R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]})",
    {"shape[0]"});
  C("shape_overflow", R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})",
    {"too large"});
  C("shape_overflow2", R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]})",
    {"too large"});
  C("offsets_end_beyond", R"({"dtype":"U8","shape":[400],"data_offsets":[0,400]})",
    {"data_offsets end 400", "beyond the data section"});
  C("offsets_begin_gt_end", R"({"dtype":"U8","shape":[0],"data_offsets":[8,0]})",
    {"begin > end"});
  C("offsets_size", R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,12]})",
    {"data_offsets span 12 bytes, shape [2,3] F32 needs 24"});
  C("offsets_size_scalar", R"({"dtype":"F64","shape":[],"data_offsets":[0,4]})",
    {"span 4 bytes, shape [] F64 needs 8"});
  C("offsets_one", R"({"dtype":"U8","shape":[1],"data_offsets":[1]})", {"data_offsets must be"});
  C("offsets_three", R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})",
    {"data_offsets must be"});
  C("offsets_negative", R"({"dtype":"U8","shape":[4],"data_offsets":[-4,0]})",
    {"data_offsets must be"});
  C("offsets_float", R"({"dtype":"U8","shape":[1],"data_offsets":[0,1.0]})",
    {"data_offsets must be"});
  C("offsets_object", R"({"dtype":"U8","shape":[1],"data_offsets":{"a":1}})",
    {"data_offsets must be"});
  std::cout << "[ corrupt  ] " << corrupt_count_ << " bad-entry variants\n";
}

TEST_F(SafeTensors, CorruptOverlapAndMetadata) {
  const std::string data(32, '\0');
  EXPECT_TRUE(corrupt("overlap",
                      build_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                 R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                 data),
                      {"overlap", "'a'", "'b'"}));
  EXPECT_TRUE(corrupt("same_range",
                      build_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},)"
                                 R"("b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}})",
                                 data),
                      {"overlap"}));
  EXPECT_TRUE(corrupt("contained",
                      build_file(R"({"a":{"dtype":"U8","shape":[32],"data_offsets":[0,32]},)"
                                 R"("b":{"dtype":"U8","shape":[2],"data_offsets":[10,12]}})",
                                 data),
                      {"overlap"}));
  EXPECT_TRUE(corrupt("bool_byte",
                      build_file(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                                 std::string("\x01\x00\x02", 3)),
                      {"tensor 'm'", "BOOL element 2 has byte value 2"}));
  EXPECT_TRUE(corrupt("meta_int", build_file(R"({"__metadata__":{"k":1}})", ""),
                      {"__metadata__", "'k'", "must be a string"}));
  EXPECT_TRUE(corrupt("meta_null", build_file(R"({"__metadata__":{"a":"b","k":null}})", ""),
                      {"__metadata__", "'k'", "must be a string"}));
  EXPECT_TRUE(corrupt("meta_array", build_file(R"({"__metadata__":["a"]})", ""),
                      {"__metadata__", "must be an object"}));
  EXPECT_TRUE(corrupt("meta_nested", build_file(R"({"__metadata__":{"k":{"x":"y"}}})", ""),
                      {"__metadata__", "'k'"}));
  // Empty tensors may sit anywhere, even inside another tensor's bytes: they share none.
  const std::string p = path("empty_inside.safetensors");
  write_bytes(p, build_file(R"({"a":{"dtype":"U8","shape":[32],"data_offsets":[0,32]},)"
                            R"("b":{"dtype":"F32","shape":[0,5],"data_offsets":[12,12]}})",
                            data));
  EXPECT_NO_THROW(dit::SafeTensorsFile{p});
}

TEST_F(SafeTensors, NotAFile) {
  try {
    dit::SafeTensorsFile f(path("missing.safetensors"));
    FAIL();
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.safetensors"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos);
  }
  try {
    dit::SafeTensorsFile f(dir_.string());
    FAIL();
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos);
  }
}

// ---- lifetime ------------------------------------------------------------------------------

TEST_F(SafeTensors, ViewsOutliveFile) {
  const std::string p = path("life.safetensors");
  const auto w = torch::randn({64, 33});
  const auto i = torch::arange(100, torch::kLong);
  dit::save_safetensors(p, {{"w", w}, {"i", i}});
  torch::Tensor vw, vi;
  {
    dit::SafeTensorsFile f(p);
    vw = f.view("w");
    vi = f.view("i");
  }
  fs::remove(p);  // the mapping survives the file's name, too
  EXPECT_TRUE(torch::equal(vw, w));
  EXPECT_TRUE(torch::equal(vi, i));
  vi = torch::Tensor();
  EXPECT_TRUE(torch::equal(vw.sum(), w.sum()));
}

TEST_F(SafeTensors, InPlaceOnViewIsPrivate) {
  const std::string p = path("cow.safetensors");
  const auto w = torch::arange(16, torch::kFloat);
  dit::save_safetensors(p, {{"w", w}});
  const std::string before = read_bytes(p);
  {
    dit::SafeTensorsFile f(p);
    auto v = f.view("w");
    v.mul_(2);  // copy-on-write: never reaches the file
    EXPECT_TRUE(torch::equal(v, w * 2));
  }
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_TRUE(torch::equal(dit::load_safetensors(p).at("w"), w));
}

// ---- writer atomicity ------------------------------------------------------------------------

TEST_F(SafeTensors, WriterMissingDirectory) {
  const std::string p = path("no_such_dir/x.safetensors");
  try {
    dit::save_safetensors(p, {{"a", torch::ones({2})}});
    FAIL() << "no throw";
  } catch (const dit::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(p), std::string::npos) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(dit::test::temp_leftovers(p).empty());
  EXPECT_FALSE(fs::exists(path("no_such_dir")));
}

TEST_F(SafeTensors, WriterOverwritesWhole) {
  const std::string p = path("over.safetensors");
  dit::save_safetensors(p, {{"big", torch::randn({256, 256})}, {"old", torch::ones({3})}});
  const auto small = torch::tensor({1, 2, 3}, torch::kInt);
  // A crashed writer's temporary is not ours to touch (it could be a live writer's); ours never
  // collides with it (dit::AtomicOutput names each temporary by pid and counter).
  const std::string stale = p + ".999999999.0.tmp";
  std::ofstream(stale) << "junk from a crashed writer";
  dit::save_safetensors(p, {{"small", small}});
  EXPECT_EQ(dit::test::temp_leftovers(p), std::vector<std::string>{stale});
  fs::remove(stale);
  dit::SafeTensorsFile f(p);
  EXPECT_EQ(f.names(), std::vector<std::string>{"small"});
  EXPECT_TRUE(torch::equal(f.view("small"), small));
  EXPECT_EQ(fs::file_size(p), 8 + read_le64(read_bytes(p)) + 12);
}

TEST_F(SafeTensors, WriterUnsupportedDtypeLeavesOldFile) {
  const std::string p = path("keep.safetensors");
  dit::save_safetensors(p, {{"a", torch::ones({2})}});
  const std::string before = read_bytes(p);
  try {
    dit::save_safetensors(
        p, {{"a", torch::ones({2})}, {"z", torch::ones({2}, torch::kComplexFloat)}});
    FAIL() << "no throw";
  } catch (const dit::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'z'"), std::string::npos) << what;
    EXPECT_NE(what.find(p), std::string::npos) << what;
  }
  EXPECT_THROW(dit::save_safetensors(p, {{"u", torch::Tensor()}}), dit::Error);
  EXPECT_THROW(dit::save_safetensors(p, {{"__metadata__", torch::ones({1})}}), dit::Error);
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_TRUE(dit::test::temp_leftovers(p).empty());
}

// A write that fails half-way (here: the file-size limit, standing in for a full disk) leaves
// the previous file intact and no temp file behind.
TEST_F(SafeTensors, WriterFailureMidWrite) {
  const std::string p = path("full.safetensors");
  dit::save_safetensors(p, {{"a", torch::ones({2})}});
  const std::string before = read_bytes(p);

  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  std::string what;
  try {
    dit::save_safetensors(p, {{"big", torch::zeros({100000})}});
  } catch (const dit::Error& e) {
    what = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(what.find(p), std::string::npos) << "no error or no path: " << what;
  EXPECT_NE(what.find("cannot write"), std::string::npos) << what;
  EXPECT_EQ(read_bytes(p), before);
  EXPECT_TRUE(dit::test::temp_leftovers(p).empty());
}

// ---- randomized corruption -----------------------------------------------------------------

TEST_F(SafeTensors, RandomCorruptionNeverCrashes) {
  dit::TensorMap m;
  m["w"] = torch::randn({16, 8});
  m["i"] = torch::arange(2, torch::kLong);
  m["m"] = torch::tensor({true, false, true, true, false});
  m["h"] = torch::randn({2, 2}).to(torch::kBFloat16);
  m["e"] = torch::empty({0}, torch::kByte);
  m["s"] = torch::tensor(1.0, torch::kDouble);
  const std::string base_path = path("base.safetensors");
  dit::save_safetensors(base_path, m, {{"k", "v"}});
  const std::string good = read_bytes(base_path);
  const size_t header_end = 8 + read_le64(good);

  std::mt19937_64 rng(20240607);
  const auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  const std::string json_chars = "{}[]\",:-.eE0123456789 x";
  const int kVariants = 800;
  int loaded = 0, rejected = 0;
  const std::string p = path("fuzz.safetensors");
  for (int v = 0; v < kVariants; ++v) {
    std::string bytes = good;
    switch (v % 4) {
      case 0:  // 1-3 bit flips in the length prefix or header
        for (size_t k = 0, n = 1 + pick(3); k < n; ++k)
          bytes[pick(header_end)] ^= static_cast<char>(1 << pick(8));
        break;
      case 1:  // bit flips anywhere (mostly in the data section, so most of these load)
        for (size_t k = 0, n = 1 + pick(4); k < n; ++k)
          bytes[pick(bytes.size())] ^= static_cast<char>(1 << pick(8));
        break;
      case 2:  // truncation, sometimes with a flip
        bytes.resize(pick(bytes.size()));
        if (!bytes.empty() && pick(2)) bytes[pick(bytes.size())] ^= static_cast<char>(1 << pick(8));
        break;
      case 3:  // a JSON-significant character somewhere in the header text
        bytes[8 + pick(header_end - 8)] = json_chars[pick(json_chars.size())];
        break;
    }
    write_bytes(p, bytes);
    try {
      dit::SafeTensorsFile f(p);
      auto all = f.load();
      for (const auto& n : f.names()) {
        auto t = f.view(n);
        auto c = t.clone();  // touch every byte
        EXPECT_EQ(tensor_bytes(c), tensor_bytes(all.at(n)));
        EXPECT_EQ(t.sizes().vec(), f.shape(n));
      }
      ++loaded;
    } catch (const dit::Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "variant " << v << ": not a dit::Error: " << e.what();
    }
  }
  std::cout << "[ fuzz     ] " << kVariants << " variants: " << loaded << " loaded, " << rejected
            << " rejected with dit::Error\n";
  EXPECT_EQ(loaded + rejected, kVariants);
  EXPECT_GT(rejected, kVariants / 4);
  EXPECT_GT(loaded, 0);
}

}  // namespace
