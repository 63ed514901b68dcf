#include <dit/error.h>
#include <dit/sampler.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace {

const char* const kBuiltin[] = {"euler", "heun", "midpoint", "rk4", "dopri5", "euler-maruyama",
                                "ddpm", "ddim"};

TEST(SamplerRegistry, ListsAllBuiltinSamplers) {
  const auto list = dit::list_samplers();
  for (const char* name : kBuiltin) {
    const bool found = std::any_of(list.begin(), list.end(),
                                   [&](const auto& entry) { return entry.first == name; });
    EXPECT_TRUE(found) << name;
  }
  for (const auto& [name, description] : list) EXPECT_FALSE(description.empty()) << name;
}

TEST(SamplerRegistry, MakesEachWithItsProperties) {
  EXPECT_EQ(dit::make_sampler("euler")->order(), 1);
  EXPECT_EQ(dit::make_sampler("heun")->order(), 2);
  EXPECT_EQ(dit::make_sampler("midpoint")->order(), 2);
  EXPECT_EQ(dit::make_sampler("rk4")->order(), 4);
  EXPECT_TRUE(dit::make_sampler("dopri5")->adaptive());
  EXPECT_FALSE(dit::make_sampler("rk4")->adaptive());
  EXPECT_TRUE(dit::make_sampler("euler-maruyama")->stochastic());
  EXPECT_FALSE(dit::make_sampler("euler")->stochastic());
  EXPECT_TRUE(dit::make_sampler("ddpm")->stochastic());
  EXPECT_FALSE(dit::make_sampler("ddim")->stochastic());  // eta 0
  EXPECT_TRUE(dit::make_sampler("ddim")->uses_epsilon());
  EXPECT_FALSE(dit::make_sampler("euler")->uses_epsilon());
}

TEST(SamplerRegistry, UnknownNameListsRegisteredNames) {
  try {
    dit::make_sampler("ddim-typo");
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ddim-typo"), std::string::npos) << msg;
    for (const char* name : kBuiltin) EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
}

TEST(SamplerRegistry, DuplicateRegistrationKeepsTheFirst) {
  EXPECT_FALSE(dit::register_sampler("euler", "impostor", [] { return nullptr; }));
  EXPECT_NE(dit::make_sampler("euler"), nullptr);
}

TEST(SamplerRegistry, TimeTensorMatchesBatch) {
  const auto x = torch::zeros({5, 3, 2}, torch::kFloat64);
  const auto t = dit::time_tensor(x, 0.25);
  EXPECT_EQ(t.sizes(), torch::IntArrayRef({5}));
  EXPECT_EQ(t.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::all(t == 0.25).item<bool>());
}

}  // namespace
