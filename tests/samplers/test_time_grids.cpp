#include <dit/error.h>
#include <dit/sampler.h>
#include <gtest/gtest.h>

#include <string>

namespace {

TEST(TimeGrid, UniformEndpointsAndSpacing) {
  const auto grid = dit::make_time_grid({"uniform", 3.0});
  for (int steps : {1, 2, 7, 30}) {
    const auto t = grid->times(steps);
    ASSERT_EQ(t.size(), static_cast<size_t>(steps) + 1);
    EXPECT_EQ(t.front(), 1.0);
    EXPECT_EQ(t.back(), 0.0);
    for (int i = 0; i < steps; ++i) {
      EXPECT_GT(t[i], t[i + 1]);
      EXPECT_NEAR(t[i] - t[i + 1], 1.0 / steps, 1e-15);
    }
  }
}

TEST(TimeGrid, ShiftedFollowsSd3Formula) {
  for (double shift : {0.5, 1.0, 3.0, 7.5}) {
    const auto grid = dit::make_time_grid({"shifted", shift});
    const int steps = 10;
    const auto t = grid->times(steps);
    ASSERT_EQ(t.size(), static_cast<size_t>(steps) + 1);
    EXPECT_EQ(t.front(), 1.0);
    EXPECT_EQ(t.back(), 0.0);
    for (int i = 0; i <= steps; ++i) {
      const double u = 1.0 - static_cast<double>(i) / steps;
      EXPECT_NEAR(t[i], shift * u / (1.0 + (shift - 1.0) * u), 1e-15) << "shift " << shift;
      if (i < steps) {
        EXPECT_GT(t[i], t[i + 1]);
      }
    }
  }
}

TEST(TimeGrid, ShiftAboveOneSpendsMoreStepsNearNoise) {
  const auto uniform = dit::make_time_grid({"uniform", 1.0})->times(10);
  const auto shifted = dit::make_time_grid({"shifted", 3.0})->times(10);
  // s > 1 maps every interior time upward (toward t = 1): the first step is shorter.
  for (int i = 1; i < 10; ++i) EXPECT_GT(shifted[i], uniform[i]);
  EXPECT_LT(shifted[0] - shifted[1], uniform[0] - uniform[1]);
}

TEST(TimeGrid, ShiftOneEqualsUniform) {
  const auto uniform = dit::make_time_grid({"uniform", 1.0})->times(16);
  const auto shifted = dit::make_time_grid({"shifted", 1.0})->times(16);
  for (size_t i = 0; i < uniform.size(); ++i) EXPECT_NEAR(shifted[i], uniform[i], 1e-15);
}

TEST(TimeGrid, UnknownNameListsValidNames) {
  try {
    dit::make_time_grid({"cosine", 3.0});
    FAIL() << "expected dit::Error";
  } catch (const dit::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cosine"), std::string::npos) << msg;
    EXPECT_NE(msg.find("uniform"), std::string::npos) << msg;
    EXPECT_NE(msg.find("shifted"), std::string::npos) << msg;
  }
}

TEST(TimeGrid, BadArgumentsThrow) {
  EXPECT_THROW(dit::make_time_grid({"uniform", 3.0})->times(0), dit::Error);
  EXPECT_THROW(dit::make_time_grid({"shifted", 0.0}), dit::Error);
  EXPECT_THROW(dit::make_time_grid({"shifted", -2.0}), dit::Error);
}

}  // namespace
