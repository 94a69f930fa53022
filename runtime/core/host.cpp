#include "runtime/core/host.h"

#include <unistd.h>

namespace dptrain {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace dptrain
