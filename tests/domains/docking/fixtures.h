#pragma once
// The docking tests' fixture files (tests/fixtures/docking): carbonic anhydrase II with its
// crystal ligand acetazolamide, shared by the docking, checks, refinement and screening suites.
#include <dit/docking.h>

#include <string>

namespace dit::docking::test {
inline const std::string kFixtures = std::string(DIT_TEST_FIXTURES) + "/docking";
inline const std::string kCrystal = kFixtures + "/acetazolamide_hca.sdf";
inline const std::string kPocket = kFixtures + "/hca_pocket.pdb";

// The pocket, read once per test binary.
inline const Receptor& pocket() {
  static const Receptor r = read_receptor(kPocket);
  return r;
}
}  // namespace dit::docking::test
