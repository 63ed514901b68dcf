# OpenMM (Debian: libopenmm-dev, plugins in libopenmm-plugins). Defines OpenMM_FOUND and
# the imported target OpenMM::OpenMM.
find_path(OpenMM_INCLUDE_DIR OpenMM.h PATH_SUFFIXES openmm)
find_library(OpenMM_LIBRARY NAMES OpenMM)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(OpenMM REQUIRED_VARS OpenMM_INCLUDE_DIR OpenMM_LIBRARY)
if(OpenMM_FOUND AND NOT TARGET OpenMM::OpenMM)
  add_library(OpenMM::OpenMM INTERFACE IMPORTED)
  set_target_properties(OpenMM::OpenMM PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${OpenMM_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${OpenMM_LIBRARY}")
endif()
