// The search box: parsing the --box flag, validation, and the autobox around a reference ligand.
#include <GraphMol/Conformer.h>
#include <dit/docking.h>
#include <dit/error.h>
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <sstream>

namespace dit::docking {

Box Box::parse(const std::string& text, const std::string& source) {
  std::vector<double> numbers;
  std::stringstream stream(text);
  std::string field;
  while (std::getline(stream, field, ',')) {
    try {
      size_t used = 0;
      numbers.push_back(std::stod(field, &used));
      if (used != field.size() && field.find_first_not_of(" \t", used) != std::string::npos)
        throw std::invalid_argument(field);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: '{}' is not a number (expected cx,cy,cz,sx,sy,sz in angstrom)",
                              source, field));
    }
  }
  if (numbers.size() != 6)
    throw Error(fmt::format("{}: expected 6 numbers cx,cy,cz,sx,sy,sz, got {} in '{}'", source,
                            numbers.size(), text));
  Box box;
  box.center = {numbers[0], numbers[1], numbers[2]};
  box.size = {numbers[3], numbers[4], numbers[5]};
  box.validate(source);
  return box;
}

void Box::validate(const std::string& source) const {
  static const char* axes = "xyz";
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(center[k]))
      throw Error(fmt::format("{}: box center {} is not finite", source, axes[k]));
    if (!std::isfinite(size[k]) || size[k] < kMinBoxEdge || size[k] > kMaxBoxEdge)
      throw Error(fmt::format("{}: box size {} = {} is outside [{}, {}] angstrom", source, axes[k],
                              size[k], kMinBoxEdge, kMaxBoxEdge));
  }
}

bool Box::contains(const Vec3& p, double margin) const {
  for (int k = 0; k < 3; ++k)
    if (std::abs(p[k] - center[k]) > 0.5 * size[k] + margin) return false;
  return true;
}

Box box_around(const RDKit::ROMol& ligand, double padding) {
  if (ligand.getNumConformers() == 0)
    throw Error("autobox: the reference ligand has no coordinates");
  const auto& conf = ligand.getConformer();
  Vec3 lo{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
          std::numeric_limits<double>::infinity()};
  Vec3 hi{-lo[0], -lo[1], -lo[2]};
  int heavy = 0;
  for (const auto* atom : ligand.atoms()) {
    if (atom->getAtomicNum() == 1) continue;
    const auto& p = conf.getAtomPos(atom->getIdx());
    const double xyz[3] = {p.x, p.y, p.z};
    for (int k = 0; k < 3; ++k) {
      lo[k] = std::min(lo[k], xyz[k]);
      hi[k] = std::max(hi[k], xyz[k]);
    }
    ++heavy;
  }
  if (heavy == 0) throw Error("autobox: the reference ligand has no heavy atoms");
  Box box;
  for (int k = 0; k < 3; ++k) {
    box.center[k] = 0.5 * (lo[k] + hi[k]);
    box.size[k] = std::max(hi[k] - lo[k] + 2 * padding, kMinBoxEdge);
  }
  return box;
}

}  // namespace dit::docking
