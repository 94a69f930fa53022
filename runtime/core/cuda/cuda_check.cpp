#include "runtime/core/cuda/cuda_check.h"

#include <unistd.h>

#include <cstdlib>

namespace dptrain {

std::string device_where() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* rank = std::getenv(name);
    if (rank && *rank) return std::string("rank ") + rank + " on " + host;
  }
  return host;
}

void throw_device_error(const char* library, long code, const char* message, const char* call, const char* file,
                        int line) {
  throw DeviceError(std::string(library) + " error " + std::to_string(code) + " (" + (message ? message : "?") +
                    ") in " + call + " at " + file + ":" + std::to_string(line) + " on " + device_where());
}

}  // namespace dptrain
