// torch.save reader (dit/torch_pt.h): the fixtures of tests/reference/make_torch_pt_fixtures.py
// against what torch.load saw (tests/fixtures/pt/expected.json: dtype, shape, stride, offset,
// values), views sharing storage, skipped non-tensor entries, a pickle calling os.system that
// must not run, damaged files (truncated, data.pkl bytes flipped, unknown opcode, missing
// record, storage too small) and hand-built archives for the limits: each must give a
// dit::Error naming the file, never a crash or a huge allocation.
#include <dit/error.h>
#include <dit/fs.h>
#include <dit/torch_pt.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/file_bytes.h"

namespace fs = dit::fs;
using namespace std::string_literals;  // "..."s: pickle bytes with NULs
using json = nlohmann::json;

namespace {

const std::string kDir = std::string(DIT_TEST_FIXTURES) + "/pt/";

class TorchPt : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("dit_torch_pt_") + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Writes bytes to a file in the test's directory; returns its path.
  std::string put(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    dit::test::write_bytes(p, bytes);
    return p;
  }
  fs::path dir_;
};

// Loads `path`: true on success; false on a dit::Error naming the file (kept in *message).
// Anything else fails the test.
bool load_or_error(const std::string& path, std::string* message = nullptr) {
  try {
    dit::load_torch_pt(path);
    return true;
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    if (message) *message = e.what();
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": not a dit::Error: " << e.what();
    return false;
  }
}

std::string error_of(const std::string& path) {
  std::string msg;
  EXPECT_FALSE(load_or_error(path, &msg)) << path << " loaded";
  return msg;
}

uint32_t rd16(const std::string& s, size_t at) {
  return static_cast<uint8_t>(s[at]) | (static_cast<uint8_t>(s[at + 1]) << 8);
}
uint32_t rd32(const std::string& s, size_t at) {
  return rd16(s, at) | (rd16(s, at + 2) << 16);
}

// Where data.pkl's bytes lie in a torch.save file, from the zip central directory (the local
// headers torch.save writes leave the sizes to a data descriptor).
std::pair<size_t, size_t> find_data_pkl(const std::string& file) {
  const size_t eocd = file.size() - 22;  // torch.save writes no archive comment
  EXPECT_EQ(rd32(file, eocd), 0x06054b50u);
  size_t p = rd32(file, eocd + 16);
  for (size_t i = 0, n = rd16(file, eocd + 10); i < n; ++i) {
    const size_t size = rd32(file, p + 24), name_len = rd16(file, p + 28);
    const size_t next = p + 46 + name_len + rd16(file, p + 30) + rd16(file, p + 32);
    const std::string name = file.substr(p + 46, name_len);
    if (name.size() >= 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0) {
      const size_t local = rd32(file, p + 42);
      return {local + 30 + rd16(file, local + 26) + rd16(file, local + 28), size};
    }
    p = next;
  }
  ADD_FAILURE() << "no data.pkl";
  return {0, 0};
}

// Replaces every occurrence of `from` by `to` (same length).
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  size_t n = 0;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()), ++n)
    s.replace(p, from.size(), to);
  EXPECT_GT(n, 0u) << "pattern not found";
  return s;
}

// ---- a minimal zip writer (stored records) and pickle pieces, for hand-built archives ----

std::string le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// CRC-32 (zip's), bitwise: no zlib dependency for the tests (the reader does not check it).
uint32_t crc32_of(const std::string& data) {
  uint32_t c = 0xFFFFFFFFu;
  for (const char ch : data) {
    c ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

struct Record {
  std::string name, data;
  uint16_t method = 0;
  uint64_t declared_size = UINT64_MAX;  // the uncompressed size written (default: data.size())
};

std::string zip(const std::vector<Record>& records) {
  std::string out, cd;
  for (const auto& r : records) {
    const uint32_t crc = crc32_of(r.data);
    const uint64_t usize = r.declared_size == UINT64_MAX ? r.data.size() : r.declared_size;
    const std::string common = le(20, 2) + le(0, 2) + le(r.method, 2) + le(0, 2) + le(0x21, 2) +
                               le(crc, 4) + le(r.data.size(), 4) + le(usize, 4) +
                               le(r.name.size(), 2) + le(0, 2);
    cd += le(0x02014b50, 4) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) +
          le(out.size(), 4) + r.name;
    out += le(0x04034b50, 4) + common + r.name + r.data;
  }
  const size_t cd_offset = out.size();
  out += cd + le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(records.size(), 2) +
         le(records.size(), 2) + le(cd.size(), 4) + le(cd_offset, 4) + le(0, 2);
  return out;
}

std::string unicode(const std::string& s) { return "X" + le(s.size(), 4) + s; }

// A pickled call to _rebuild_tensor_v2 on storage `key` of `numel` elements of `type`.
std::string tensor_pickle(const std::string& key, int numel, const std::string& size_tuple,
                          const std::string& stride_tuple, const std::string& type = "FloatStorage",
                          int offset = 0, const std::string& location = "cpu") {
  return "ctorch._utils\n_rebuild_tensor_v2\n((" + unicode("storage") + "ctorch\n" + type +
         "\n" + unicode(key) + unicode(location) + "J" + le(static_cast<uint32_t>(numel), 4) +
         "tQJ" + le(static_cast<uint32_t>(offset), 4) + size_tuple + stride_tuple +
         "\x89" "ccollections\nOrderedDict\n)RtR";
}

// A torch.save-layout archive around a pickle; storages as (key, bytes).
std::string archive(const std::string& pkl,
                    const std::vector<std::pair<std::string, std::string>>& storages = {}) {
  std::vector<Record> records{{"a/data.pkl", pkl}};
  for (const auto& [k, bytes] : storages) records.push_back({"a/data/" + k, bytes});
  records.push_back({"a/version", "3\n"});
  return zip(records);
}

std::string floats(std::initializer_list<float> v) {
  std::string s;
  for (float f : v) s.append(reinterpret_cast<const char*>(&f), 4);
  return s;
}

torch::ScalarType dtype_named(const std::string& name) {
  if (name == "float32") return torch::kFloat;
  if (name == "float64") return torch::kDouble;
  if (name == "float16") return torch::kHalf;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "int64") return torch::kLong;
  if (name == "int32") return torch::kInt;
  if (name == "bool") return torch::kBool;
  ADD_FAILURE() << "dtype " << name;
  return torch::kFloat;
}

// Every tensor of `file` as torch.load saw it (expected.json).
void expect_matches_torch_load(const std::string& file, const dit::TensorMap& got) {
  std::ifstream f(kDir + "expected.json");
  const json want = json::parse(f).at(file);
  std::vector<std::string> want_keys, got_keys;
  for (const auto& [k, v] : want.items()) want_keys.push_back(k);
  for (const auto& [k, v] : got) got_keys.push_back(k);
  std::sort(want_keys.begin(), want_keys.end());
  ASSERT_EQ(got_keys, want_keys) << file;
  for (const auto& [k, w] : want.items()) {
    SCOPED_TRACE(file + ": " + k);
    const torch::Tensor& t = got.at(k);
    EXPECT_EQ(t.scalar_type(), dtype_named(w.at("dtype").get<std::string>()));
    EXPECT_EQ(t.sizes().vec(), w.at("shape").get<std::vector<int64_t>>());
    EXPECT_EQ(t.strides().vec(), w.at("stride").get<std::vector<int64_t>>());
    EXPECT_EQ(t.storage_offset(), w.at("storage_offset").get<int64_t>());
    EXPECT_TRUE(t.device().is_cpu());
    const auto values = w.at("values").get<std::vector<double>>();
    const torch::Tensor flat = t.to(torch::kDouble).contiguous().flatten();
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i)
      ASSERT_EQ(flat[static_cast<int64_t>(i)].item<double>(), values[i]) << "element " << i;
  }
}

TEST_F(TorchPt, StateDictMatchesTorchLoad) {
  const auto sd = dit::load_torch_pt(kDir + "state_dict.pt");
  expect_matches_torch_load("state_dict.pt", sd);
  // Views saved sharing one storage share one buffer here too.
  EXPECT_TRUE(sd.at("grid_t").is_alias_of(sd.at("grid")));
  EXPECT_TRUE(sd.at("grid_window").is_alias_of(sd.at("grid")));
  EXPECT_FALSE(sd.at("grid_t").is_contiguous());
  EXPECT_FALSE(sd.at("lin.weight").is_alias_of(sd.at("grid")));
  EXPECT_EQ(sd.at("ramp_tail").storage_offset(), 3);
  // Spot values rebuilt here from the generator's formulas.
  EXPECT_TRUE(torch::equal(sd.at("grid"), torch::arange(24, torch::kFloat).reshape({4, 6})));
  EXPECT_TRUE(
      torch::equal(sd.at("grid_window"),
                   torch::arange(24, torch::kFloat).reshape({4, 6}).slice(0, 1, 3).slice(1, 2, 5)));
  EXPECT_TRUE(torch::equal(sd.at("i64"), torch::arange(-3, 4, torch::kLong)));
  EXPECT_TRUE(torch::equal(sd.at("mask"), torch::arange(5) % 2 == 0));
  EXPECT_EQ(sd.at("f64_scalar").dim(), 0);
  EXPECT_EQ(sd.at("f64_scalar").item<double>(), 2.5);
}

TEST_F(TorchPt, TrainingCheckpointKeysAndSkippedEntries) {
  dit::Metadata skipped;
  const auto ck = dit::load_torch_pt(kDir + "checkpoint.pt", &skipped);
  expect_matches_torch_load("checkpoint.pt", ck);
  EXPECT_EQ(skipped.at("args"), "<argparse.Namespace>");
  EXPECT_EQ(skipped.at("steps"), "7");
  EXPECT_EQ(skipped.at("opt.param_groups.0.lr"), "0.001");
  EXPECT_EQ(skipped.at("opt.param_groups.0.amsgrad"), "False");
  EXPECT_EQ(skipped.at("opt.param_groups.0.params.1"), "1");
  for (const auto& [k, v] : skipped) EXPECT_EQ(ck.count(k), 0u) << k;
  // model.* were nn.Parameters (keep_vars=True); ema.* plain tensors of half the values.
  EXPECT_TRUE(torch::equal(ck.at("ema.lin.weight"), ck.at("model.lin.weight") * 0.5));
}

TEST_F(TorchPt, Protocol4) {
  dit::Metadata skipped;
  const auto p4 = dit::load_torch_pt(kDir + "protocol4.pt", &skipped);
  expect_matches_torch_load("protocol4.pt", p4);
  EXPECT_TRUE(p4.at("list.1").is_alias_of(p4.at("list.0")));
  const dit::Metadata want{{"meta.set", "<set, 2 items>"}, {"meta.bytes", "<bytes, 2>"},
                           {"meta.big", "<int beyond 64 bits>"}, {"meta.neg", "-5"},
                           {"meta.f", "0.5"}, {"meta.none", "None"}, {"meta.flag", "True"},
                           {"meta.fs", "<set, 1 items>"}, {"meta.name", "p4"}};
  EXPECT_EQ(skipped, want);
}

TEST_F(TorchPt, TensorsOutliveTheReader) {
  torch::Tensor t;
  { t = dit::load_torch_pt(kDir + "state_dict.pt").at("grid_t"); }
  EXPECT_TRUE(torch::equal(t, torch::arange(24, torch::kFloat).reshape({4, 6}).t()));
}

TEST_F(TorchPt, OsSystemIsNeverCalled) {
  const std::string marker = "/tmp/dit_torch_pt_os_system_ran";
  fs::remove(marker);
  dit::Metadata skipped;
  const auto m = dit::load_torch_pt(kDir + "os_system.pt", &skipped);
  EXPECT_FALSE(fs::exists(marker)) << "the pickle's os.system / exec ran";
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(torch::equal(m.at("weight"), torch::arange(4, torch::kFloat)));
  EXPECT_EQ(skipped.at("evil"), "<os.system(...)>");
  EXPECT_EQ(skipped.at("evil2"), "<builtins.exec(...)>");
}

TEST_F(TorchPt, ZipDetectionAndLegacyFormat) {
  EXPECT_TRUE(dit::is_torch_zip_file(kDir + "state_dict.pt"));
  EXPECT_FALSE(dit::is_torch_zip_file(kDir + "legacy.pt"));
  EXPECT_FALSE(dit::is_torch_zip_file(kDir + "expected.json"));
  const std::string missing = (dir_ / "missing.pt").string();
  try {
    dit::is_torch_zip_file(missing);
    ADD_FAILURE() << "no error";
  } catch (const dit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  EXPECT_NE(error_of(missing).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of(kDir + "legacy.pt").find("legacy torch.save format"), std::string::npos);
  EXPECT_NE(error_of(kDir + "expected.json").find("zip header"), std::string::npos);
}

TEST_F(TorchPt, TruncatedFiles) {
  const std::string file = dit::test::read_bytes(kDir + "state_dict.pt");
  for (size_t len : {size_t{0}, size_t{3}, size_t{4}, size_t{100}, file.size() / 2,
                     file.size() - 22, file.size() - 1}) {
    SCOPED_TRACE(len);
    const std::string msg = error_of(put("t.pt", file.substr(0, len)));
    EXPECT_FALSE(msg.empty());
  }
}

TEST_F(TorchPt, EveryDataPklByteFlipped) {
  // Each byte of data.pkl inverted in turn: a clean load or a dit::Error naming the file.
  // (torch.save's zip reader does not check CRCs, so every flip reaches the pickle machine.)
  const std::string file = dit::test::read_bytes(kDir + "state_dict.pt");
  const auto [at, size] = find_data_pkl(file);
  ASSERT_GT(size, 100u);
  size_t errors = 0;
  for (size_t i = 0; i < size; ++i) {
    std::string bad = file;
    bad[at + i] = static_cast<char>(~bad[at + i]);
    if (!load_or_error(put("flip.pt", bad))) ++errors;
  }
  EXPECT_GT(errors, size / 2);
  // The protocol byte: a clear message with the offset.
  std::string bad = file;
  bad[at + 1] = '\x07';
  EXPECT_NE(error_of(put("proto.pt", bad)).find("data.pkl offset 0: unsupported pickle protocol 7"),
            std::string::npos);
}

TEST_F(TorchPt, UnknownOpcodeNamesByteAndOffset) {
  std::string file = dit::test::read_bytes(kDir + "state_dict.pt");
  const auto [at, size] = find_data_pkl(file);
  ASSERT_EQ(file[at + 2], 'c');  // GLOBAL collections.OrderedDict after PROTO 2
  file[at + 2] = 'I';            // INT, a protocol-0 text opcode
  const std::string msg = error_of(put("op.pt", file));
  EXPECT_NE(msg.find("data.pkl offset 2: unsupported pickle opcode 0x49 ('I')"), std::string::npos)
      << msg;
}

TEST_F(TorchPt, MissingStorageRecord) {
  // Storage 1 renamed in the local header and the central directory (same length).
  const std::string file = replace_all(dit::test::read_bytes(kDir + "state_dict.pt"),
                                       "state_dict/data/1", "state_dict/data/Z");
  const std::string msg = error_of(put("missing.pt", file));
  EXPECT_NE(msg.find("record 'state_dict/data/1' is missing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor '"), std::string::npos) << msg;
}

TEST_F(TorchPt, StorageTooSmallForTheTensor) {
  // grid_window: size (2, 3), stride (6, 1), offset 8 into the 24 floats of grid. Size (4, 3)
  // would reach element 8 + 3 * 6 + 2 = 28.
  std::string file = dit::test::read_bytes(kDir + "state_dict.pt");
  const std::string size_23 = std::string("K\x02K\x03\x86", 5);
  const auto [at, size] = find_data_pkl(file);
  const size_t p = file.find(std::string("K\x08") + size_23, at);  // offset 8, then the size
  ASSERT_NE(p, std::string::npos);
  ASSERT_LT(p, at + size);
  file[p + 3] = '\x04';
  const std::string msg = error_of(put("small.pt", file));
  EXPECT_NE(msg.find("tensor 'grid_window'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reach element 28"), std::string::npos) << msg;
  EXPECT_NE(msg.find("holds 24 elements"), std::string::npos) << msg;
}

TEST_F(TorchPt, RecordSizeMustMatchTheStorage) {
  // A persistent id saying 5 floats for a record of 4.
  const std::string pkl = "\x80\x02}(" + unicode("w") +
                          tensor_pickle("0", 5, "K\x04\x85", "K\x01\x85") + "u.";
  const std::string msg = error_of(put("size.pt", archive(pkl, {{"0", floats({0, 1, 2, 3})}})));
  EXPECT_NE(msg.find("tensor 'w': record 'a/data/0' holds 16 bytes, expected 20"),
            std::string::npos)
      << msg;
}

TEST_F(TorchPt, HandBuiltArchives) {
  ASSERT_EQ(crc32_of("123456789"), 0xCBF43926u);  // the zip writer's CRC: the standard check value
  const std::string ok = "\x80\x02}(" + unicode("w") +
                         tensor_pickle("0", 4, "K\x02K\x02\x86", "K\x02K\x01\x86") + "u.";
  const auto good = dit::load_torch_pt(put("ok.pt", archive(ok, {{"0", floats({0, 1, 2, 3})}})));
  EXPECT_TRUE(torch::equal(good.at("w"), torch::arange(4, torch::kFloat).reshape({2, 2})));
  // Saved from a GPU: loaded to the CPU all the same.
  const std::string cuda = "\x80\x02}(" + unicode("w") +
                           tensor_pickle("0", 4, "K\x04\x85", "K\x01\x85", "FloatStorage", 0,
                                         "cuda:0") + "u.";
  const auto on_cpu =
      dit::load_torch_pt(put("cuda.pt", archive(cuda, {{"0", floats({0, 1, 2, 3})}})));
  EXPECT_TRUE(on_cpu.at("w").device().is_cpu());
  EXPECT_TRUE(torch::equal(on_cpu.at("w"), torch::arange(4, torch::kFloat)));
  // PyTorch 2.x's byteorder record: "little" loads, "big" is refused.
  for (const std::string order : {"little", "big"}) {
    const std::string f =
        put(order + ".pt",
            zip({{"a/data.pkl", "\x80\x02N."}, {"a/byteorder", order}, {"a/version", "3\n"}}));
    if (order == "little") EXPECT_TRUE(load_or_error(f));
    else EXPECT_NE(error_of(f).find("byteorder record says 'big'"), std::string::npos);
  }

  struct Case {
    const char* name;
    std::string pkl;
    std::vector<std::pair<std::string, std::string>> storages;
    const char* expect;
  };
  const std::string four = floats({0, 1, 2, 3});
  const std::vector<Case> cases = {
      {"negative stride", "\x80\x02}(" + unicode("w") +
           tensor_pickle("0", 4, "K\x02\x85", "J\xff\xff\xff\xff\x85") + "u.",
       {{"0", four}}, "stride[0] = -1, expected >= 0"},
      {"offset past the end", "\x80\x02}(" + unicode("w") +
           tensor_pickle("0", 4, "K\x02\x85", "K\x01\x85", "FloatStorage", 3) + "u.",
       {{"0", four}}, "reach element 4"},
      {"overflowing sizes", "\x80\x02}(" + unicode("w") +
           tensor_pickle("0", 4, "\x8a\x08" + le(1ull << 62, 8) + "K\x08\x86",
                         "K\x01K\x01\x86") + "u.",
       {{"0", four}}, "overflows"},
      {"rank mismatch", "\x80\x02}(" + unicode("w") +
           tensor_pickle("0", 4, "K\x02\x85", "K\x01K\x01\x86") + "u.",
       {{"0", four}}, "size has 1 dimensions, stride 2"},
      {"bool byte 2", "\x80\x02}(" + unicode("m") +
           tensor_pickle("0", 2, "K\x02\x85", "K\x01\x85", "BoolStorage") + "u.",
       {{"0", std::string("\x01\x02", 2)}}, "holds byte 2 at 1, expected 0 or 1"},
      {"quantized storage", "\x80\x02}(" + unicode("q") +
           tensor_pickle("0", 4, "K\x04\x85", "K\x01\x85", "QInt8Storage") + "u.",
       {{"0", "abcd"}}, "storage type torch.QInt8Storage is not supported"},
      {"quantized rebuild", "\x80\x02}(" + unicode("q") +
           "ctorch._utils\n_rebuild_qtensor\n)Ru.", {}, "_rebuild_qtensor, which is not supported"},
      {"two tensors one key", "\x80\x02}(" + unicode("a.b") +
           tensor_pickle("0", 4, "K\x04\x85", "K\x01\x85") + unicode("a") + "}" + unicode("b") +
           tensor_pickle("0", 4, "K\x04\x85", "K\x01\x85") + "su.",
       {{"0", four}}, "two tensors have the key path 'a.b'"},
      {"string longer than the pickle", "\x80\x02X\xff\xff\xff\x7f" "abc.", {},
       "data.pkl offset 2: string needs 2147483647 bytes, 4 left"},
      {"undefined memo", "\x80\x02h\x05.", {}, "memo entry 5 is not defined"},
      {"stack underflow", "\x80\x02(\x85.", {}, "stack underflow"},
      {"no STOP", "\x80\x02}", {}, "truncated pickle"},
      {"list containing itself", "\x80\x02]q\x00h\x00" "a."s, {}, "nested deeper than 100 levels"},
      {"protocol 5 buffer", "\x80\x05\x97.", {}, "unsupported pickle opcode 0x97"},
      {"calling a number", "\x80\x02K\x01)R.", {}, "REDUCE: cannot call a int"},
      {"invalid UTF-8", "\x80\x02X\x02\x00\x00\x00\xc3\x28."s, {}, "not valid UTF-8"},
      {"bad persistent id", "\x80\x02K\x01Q.", {}, "persistent id: expected"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string msg = error_of(put("case.pt", archive(c.pkl, c.storages)));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }

  // Shared sub-objects doubling at each of 30 levels: 2^30 paths, refused by the walk budget.
  std::string dag = "\x80\x02N";
  for (int i = 0; i < 30; ++i)
    dag += "q\x00}("s + unicode("a") + "h\x00"s + unicode("b") + "h\x00u"s;
  dag += ".";
  EXPECT_NE(error_of(put("dag.pt", archive(dag))).find("more than"), std::string::npos);
}

TEST_F(TorchPt, DeclaredSizesAreCheckedBeforeAllocation) {
  // A deflated record declaring 3.75 GB from 16 bytes, with a pickle that expects that much:
  // refused before libtorch allocates it.
  const uint64_t huge = 0xF0000000ull;
  const std::string pkl = "\x80\x02}(" + unicode("w") +
                          tensor_pickle("0", static_cast<int>(huge / 4), "K\x04\x85", "K\x01\x85") +
                          "u.";
  std::vector<Record> records{{"a/data.pkl", pkl}, {"a/data/0", std::string(16, 'x'), 8, huge},
                              {"a/version", "3\n"}};
  const std::string msg = error_of(put("deflate.pt", zip(records)));
  EXPECT_NE(msg.find("more than deflate can produce"), std::string::npos) << msg;

  // No version record, or a version this libtorch does not read.
  EXPECT_NE(
      error_of(put("nover.pt", zip({{"a/data.pkl", "\x80\x02N."}}))).find("no record 'a/version'"),
      std::string::npos);
  EXPECT_NE(error_of(put("v99.pt", zip({{"a/data.pkl", "\x80\x02N."}, {"a/version", "99\n"}})))
                .find("version record"),
            std::string::npos);
  EXPECT_NE(error_of(put("flat.pt", zip({{"data.pkl", "\x80\x02N."}, {"version", "3\n"}})))
                .find("not in a folder"),
            std::string::npos);
}

TEST_F(TorchPt, RandomDamageNeverCrashes) {
  const std::string file = dit::test::read_bytes(kDir + "checkpoint.pt");
  std::mt19937 rng(20261206);
  for (int iter = 0; iter < 300; ++iter) {
    std::string bad = file;
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int j = 0; j < n; ++j) bad[rng() % bad.size()] = static_cast<char>(rng() & 0xff);
    load_or_error(put("rand.pt", bad));
  }
}

}  // namespace
