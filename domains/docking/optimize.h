#pragma once
// Internal to libdit_docking: local optimisation of a pose (L-BFGS on the pose tangent space,
// Nocedal & Wright 2006, algorithm 7.4, with an Armijo backtracking line search).
#include "domains/docking/pose.h"

#include <functional>

namespace dit::docking {

// f(pose, gradient or null) -> value.
using PoseObjective = std::function<double(const Pose&, PoseGradient*)>;

struct LocalOptimum {
  Pose pose;
  double value = 0;
  int iterations = 0;
  int evaluations = 0;
};

LocalOptimum minimize_pose(const PoseObjective& f, const Pose& start, int max_iterations = 200,
                           double gradient_tolerance = 1e-3);

}  // namespace dit::docking
