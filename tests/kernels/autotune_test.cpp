// Autotuning of the cpu attention's tiles (include/dit/kernels.h, "autotuning";
// kernels/autotune.h): the search, the JSON cache and its rules, and correctness at every tile
// size the search can pick. Each test points DIT_AUTOTUNE_CACHE at its own file.
#include <dit/kernels.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <dit/fs.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "kernels/autotune.h"
#include "kernels/backends.h"

namespace {

namespace k = dit::kernels;
namespace fs = dit::fs;
using json = nlohmann::json;

constexpr double kAutotuneAttentionTol = 1e-5;  // as tests/kernels/backends_test.cpp (fp32, N(0,1) inputs)

class Autotune : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dit_autotune_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cache_ = (dir_ / "autotune.json").string();
    ::setenv("DIT_AUTOTUNE_CACHE", cache_.c_str(), 1);
    k::autotune::reload();
    k::set_autotune(true);
  }
  void TearDown() override {
    ::unsetenv("DIT_AUTOTUNE_CACHE");
    k::autotune::reload();
    fs::remove_all(dir_);
  }
  json read_cache() const {
    std::ifstream in(cache_);
    std::stringstream ss;
    ss << in.rdbuf();
    return json::parse(ss.str());
  }
  void write_cache(const json& entries) const {
    std::ofstream(cache_) << json{{"format", "dit-engine autotune 1"}, {"entries", entries}}.dump();
  }
  fs::path dir_;
  std::string cache_;
};

struct Inputs {
  torch::Tensor q, k, v;
};
Inputs make_inputs(int64_t B, int64_t H, int64_t Nq, int64_t Nk, int64_t D, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({B, H, Nq, D}), torch::randn({B, H, Nk, D}), torch::randn({B, H, Nk, D})};
}

double error_vs_float64(const Inputs& in, const k::AttentionOptions& opts = {}) {
  torch::NoGradGuard no_grad;
  auto ref = k::reference::attention(in.q.to(torch::kFloat64), in.k.to(torch::kFloat64),
                                     in.v.to(torch::kFloat64), opts);
  auto out = k::cpu::attention(in.q, in.k, in.v, opts);
  return (out.to(torch::kFloat64) - ref).abs().max().item<double>();
}

int64_t value_of(const std::string& chosen) {  // "key_tile=64" -> 64
  return std::stoll(chosen.substr(chosen.find('=') + 1));
}

TEST_F(Autotune, SearchTimesCandidatesStoresWinnersAndReusesThem) {
  const auto in = make_inputs(2, 3, 200, 300, 64, 1);
  const auto reports = k::cpu::tune_attention(in.q, in.k, in.v, {}, "", false);
  ASSERT_EQ(reports.size(), 2u);  // key tile, then query tile
  EXPECT_NE(reports[0].key.find("key_tile"), std::string::npos);
  EXPECT_NE(reports[1].key.find("q_tile"), std::string::npos);
  for (const auto& r : reports) {
    ASSERT_GE(r.candidates.size(), 2u) << r.key;
    bool chosen_is_fastest = false;
    double best = 1e30;
    for (const auto& c : r.candidates) best = std::min(best, c.ms);
    for (const auto& c : r.candidates) {
      EXPECT_GT(c.ms, 0) << c.name;
      if (c.name == r.chosen && c.ms == best) chosen_is_fastest = true;
    }
    EXPECT_TRUE(chosen_is_fastest) << r.key << " chose " << r.chosen;
  }
  // Key tiles 32..256 for 300 keys: all four are useful; query tiles up to the first >= 200.
  EXPECT_EQ(reports[0].candidates.size(), 4u);

  const json doc = read_cache();
  EXPECT_EQ(doc["format"], "dit-engine autotune 1");
  for (const auto& r : reports) {
    ASSERT_TRUE(doc["entries"].contains(r.key)) << r.key;
    const std::string name = r.key.substr(r.key.rfind('|') + 1);  // "key_tile" or "q_tile"
    EXPECT_EQ(doc["entries"][r.key][name].get<int64_t>(), value_of(r.chosen));
    EXPECT_EQ(doc["entries"][r.key]["ms"].size(), r.candidates.size());
    EXPECT_EQ(r.key.rfind(k::autotune::cpu_device_name(), 0), 0u) << "keys start with the device";
  }

  // A new process (reload) takes the answers from the file without timing anything.
  k::autotune::reload();
  const auto again = k::cpu::tune_attention(in.q, in.k, in.v, {}, "", false);
  ASSERT_EQ(again.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(again[i].candidates.empty());
    EXPECT_EQ(again[i].chosen, reports[i].chosen);
  }
  const auto tiles = k::cpu::attention_tiles(in.q, in.k, in.v);
  EXPECT_EQ(tiles.key_tile, value_of(reports[0].chosen));
  EXPECT_EQ(tiles.q_tile, value_of(reports[1].chosen));
}

// Every tile size the search can pick gives the float64 reference's answer: the cache file is
// written with each (q_tile, key_tile) pair in turn and honoured by the next call.
TEST_F(Autotune, EveryTileChoiceMatchesFloat64Reference) {
  for (int64_t D : {64, 72}) {
    const auto in = make_inputs(2, 3, 67, 301, D, 2 + D);
    k::AttentionOptions masked;
    auto mask = torch::rand({2, 301}) < 0.6;
    mask.index_put_({0, 5}, true);
    masked.key_mask = mask;
    const k::AttentionOptions unmasked;
    for (const k::AttentionOptions* opts : {&unmasked, static_cast<const k::AttentionOptions*>(&masked)}) {
      const auto reports = k::cpu::tune_attention(in.q, in.k, in.v, *opts, "", false);
      ASSERT_EQ(reports.size(), 2u);
      const auto tiles = k::cpu::attention_tiles(in.q, in.k, in.v, *opts);
      for (int64_t kt : {32, 64, 128, 256})
        for (int64_t qt : {16, 32, 64, 128}) {  // multiples of every ISA's width
          // The query-tile key names the key tile it was measured with.
          std::string q_key = reports[1].key;
          const std::string tag = "key_tile=" + std::to_string(tiles.key_tile);
          q_key.replace(q_key.find(tag), tag.size(), "key_tile=" + std::to_string(kt));
          write_cache({{reports[0].key, {{"key_tile", kt}}}, {q_key, {{"q_tile", qt}}}});
          k::autotune::reload();
          const auto used = k::cpu::attention_tiles(in.q, in.k, in.v, *opts);
          ASSERT_EQ(used.key_tile, kt);
          ASSERT_EQ(used.q_tile, qt);
          EXPECT_LT(error_vs_float64(in, *opts), kAutotuneAttentionTol)
              << "D " << D << " key_tile " << kt << " q_tile " << qt
              << (opts->key_mask ? " masked" : "");
        }
    }
  }
}

TEST_F(Autotune, FirstWrittenAnswerWinsOverALaterSearch) {
  const auto in = make_inputs(1, 2, 128, 128, 64, 3);
  const auto reports = k::cpu::tune_attention(in.q, in.k, in.v, {}, "", false);
  // This process reads an empty cache; then another process stores key tile 128 before this
  // one's own search finishes.
  write_cache(json::object());
  k::autotune::reload();
  (void)k::autotune::lookup("nothing");
  write_cache({{reports[0].key, {{"key_tile", 128}}}});
  const auto tiles = k::cpu::attention_tiles(in.q, in.k, in.v);
  EXPECT_EQ(tiles.key_tile, 128) << "the value on disk is adopted, not this process's own";
  EXPECT_EQ(read_cache()["entries"][reports[0].key]["key_tile"], 128);
}

TEST_F(Autotune, UnusableCachedTilesAreSearchedAgainAndReplaced) {
  const auto in = make_inputs(1, 2, 100, 100, 64, 7);
  const auto reports = k::cpu::tune_attention(in.q, in.k, in.v, {}, "", false);
  // A hand-edited file: a query tile that is not a multiple of any SIMD width...
  write_cache({{reports[0].key, {{"key_tile", value_of(reports[0].chosen)}}},
               {reports[1].key, {{"q_tile", 12}}}});
  k::autotune::reload();
  auto tiles = k::cpu::attention_tiles(in.q, in.k, in.v);
  EXPECT_NE(tiles.q_tile, 12);  // searched again: a candidate (a multiple of the width)
  EXPECT_LT(error_vs_float64(in), kAutotuneAttentionTol);
  EXPECT_EQ(read_cache()["entries"][reports[1].key]["q_tile"], tiles.q_tile);
  // ...and a key tile that is not a number.
  write_cache({{reports[0].key, {{"key_tile", "big"}}}});
  k::autotune::reload();
  tiles = k::cpu::attention_tiles(in.q, in.k, in.v);
  EXPECT_GT(tiles.key_tile, 0);
  EXPECT_EQ(read_cache()["entries"][reports[0].key]["key_tile"], tiles.key_tile);
  EXPECT_LT(error_vs_float64(in), kAutotuneAttentionTol);
}

TEST_F(Autotune, CorruptCacheIsReportedAndRebuilt) {
  std::ofstream(cache_) << "{ not json";
  k::autotune::reload();
  const auto in = make_inputs(1, 1, 64, 64, 32, 4);
  testing::internal::CaptureStderr();
  const auto tiles = k::cpu::attention_tiles(in.q, in.k, in.v);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(cache_), std::string::npos) << err;
  EXPECT_NE(err.find("unreadable"), std::string::npos) << err;
  EXPECT_GT(tiles.key_tile, 0);
  EXPECT_EQ(read_cache()["format"], "dit-engine autotune 1");
  EXPECT_LT(error_vs_float64(in), kAutotuneAttentionTol);
}

TEST_F(Autotune, OffMeansDefaultTilesAndNoCache) {
  k::set_autotune(false);
  const auto in = make_inputs(4, 6, 256, 256, 64, 5);
  const auto tiles = k::cpu::attention_tiles(in.q, in.k, in.v);
  EXPECT_EQ(tiles.key_tile, 64);
  EXPECT_EQ(tiles.q_tile, 64);  // 4 x 6 x 4 = 96 tasks: no halving on any thread count <= 24
  EXPECT_LT(error_vs_float64(in), kAutotuneAttentionTol);
  EXPECT_FALSE(fs::exists(cache_));
  k::set_autotune(true);
}

TEST_F(Autotune, UnwritableCacheTunesForThisProcessOnly) {
  ::setenv("DIT_AUTOTUNE_CACHE", "/proc/dit-no-such-dir/autotune.json", 1);
  k::autotune::reload();
  const auto in = make_inputs(1, 2, 100, 100, 64, 6);
  testing::internal::CaptureStderr();
  const auto first = k::cpu::attention_tiles(in.q, in.k, in.v);
  const auto second = k::cpu::attention_tiles(in.q, in.k, in.v);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not kept"), std::string::npos) << err;
  EXPECT_EQ(first.key_tile, second.key_tile);
  EXPECT_EQ(first.q_tile, second.q_tile);
  EXPECT_LT(error_vs_float64(in), kAutotuneAttentionTol);
}

}  // namespace
