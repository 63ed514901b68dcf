#include <dit/runtime.h>

#ifndef DIT_GIT_REVISION
#define DIT_GIT_REVISION "unknown"
#endif

namespace dit {

std::string version_string() { return std::string(DIT_VERSION) + "+" + DIT_GIT_REVISION; }

}  // namespace dit
