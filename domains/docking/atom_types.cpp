// X-Score atom types and their constants, as AutoDock Vina uses them (Trott & Olson 2010,
// J. Comput. Chem. 31:455, table 1; vina/src/lib/atom_constants.h xs_vdw_radii).
#include <dit/docking.h>

namespace dit::docking {

namespace {
struct XsInfo {
  const char* name;
  double radius;
  bool hydrophobic, donor, acceptor;
};
constexpr XsInfo kXs[] = {
    {"C_H", 1.9, true, false, false},   {"C_P", 1.9, false, false, false},
    {"N_P", 1.8, false, false, false},  {"N_D", 1.8, false, true, false},
    {"N_A", 1.8, false, false, true},   {"N_DA", 1.8, false, true, true},
    {"O_P", 1.7, false, false, false},  {"O_D", 1.7, false, true, false},
    {"O_A", 1.7, false, false, true},   {"O_DA", 1.7, false, true, true},
    {"S_P", 2.0, false, false, false},  {"P_P", 2.1, false, false, false},
    {"F_H", 1.5, true, false, false},   {"Cl_H", 1.8, true, false, false},
    {"Br_H", 2.0, true, false, false},  {"I_H", 2.2, true, false, false},
    {"Met_D", 1.2, false, true, false}, {"Other", 1.9, false, false, false},
};
static_assert(sizeof(kXs) / sizeof(kXs[0]) == static_cast<int>(XsType::Count));
const XsInfo& info(XsType t) { return kXs[static_cast<int>(t)]; }
}  // namespace

const char* xs_name(XsType type) { return info(type).name; }
double xs_vdw_radius(XsType type) { return info(type).radius; }
bool xs_is_hydrophobic(XsType type) { return info(type).hydrophobic; }
bool xs_is_donor(XsType type) { return info(type).donor; }
bool xs_is_acceptor(XsType type) { return info(type).acceptor; }

}  // namespace dit::docking
