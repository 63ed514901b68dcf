# RDKit (Debian: librdkit-dev). RDKit ships no CMake config there, so its headers and the libraries
# the docking domain uses are found by hand. Defines RDKit_FOUND and the imported target RDKit::RDKit.
find_path(RDKit_INCLUDE_DIR GraphMol/ROMol.h PATH_SUFFIXES rdkit)
set(_rdkit_components GraphMol SmilesParse FileParsers DistGeomHelpers DistGeometry
  ForceFieldHelpers ForceField MolAlign Alignment SubstructMatch MolTransforms Optimizer
  PartialCharges Subgraphs EigenSolvers Depictor DataStructs RDGeometryLib RDGeneral)
set(RDKit_LIBRARIES "")
set(_rdkit_missing "")
foreach(c IN LISTS _rdkit_components)
  find_library(RDKit_${c}_LIBRARY NAMES RDKit${c})
  if(RDKit_${c}_LIBRARY)
    list(APPEND RDKit_LIBRARIES ${RDKit_${c}_LIBRARY})
  else()
    list(APPEND _rdkit_missing RDKit${c})
  endif()
endforeach()
find_package(Boost QUIET)  # RDKit's headers include Boost
# One string: a ';' list here would be split into unknown keywords of the call below.
list(JOIN _rdkit_missing " " _rdkit_missing)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(RDKit REQUIRED_VARS RDKit_INCLUDE_DIR RDKit_LIBRARIES Boost_FOUND
  REASON_FAILURE_MESSAGE "missing: ${_rdkit_missing} (install librdkit-dev libboost-dev)")
if(RDKit_FOUND AND NOT TARGET RDKit::RDKit)
  add_library(RDKit::RDKit INTERFACE IMPORTED)
  set_target_properties(RDKit::RDKit PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${RDKit_INCLUDE_DIR};${Boost_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${RDKit_LIBRARIES}")
endif()
