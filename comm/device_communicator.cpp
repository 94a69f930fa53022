// Registration of the device communicators: the one place in comm/ that knows at compile time
// whether NCCL exists.
#include "comm/device_communicator.h"

#include <cstdlib>
#include <string>

#include "comm/staging_communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/errors.h"

#ifdef DPTRAIN_HAVE_CUDA
#include "comm/nccl/nccl_communicator.h"
#endif

namespace dptrain {

DeviceCommKind device_comm_from_environment() {
  const char* text = std::getenv("DPTRAIN_DEVICE_COMM");
  const std::string value = text ? text : "";
  if (value.empty() || value == "auto") return DeviceCommKind::Auto;
  if (value == "nccl") return DeviceCommKind::Nccl;
  if (value == "staging") return DeviceCommKind::Staging;
  throw UsageError("DPTRAIN_DEVICE_COMM='" + value + "': use auto, nccl or staging");
}

std::unique_ptr<Communicator> make_device_communicator(Communicator& host, DeviceKind device, Deadline deadline,
                                                       DeviceCommKind kind) {
  if (device == DeviceKind::CPU) return nullptr;
  DeviceRuntime& runtime = require_cuda_runtime();
  // One worker never all-reduces (GradientReducer skips it), so NCCL is not worth starting.
  const bool want_nccl = kind == DeviceCommKind::Nccl || (kind == DeviceCommKind::Auto && host.size() > 1);
#ifdef DPTRAIN_HAVE_CUDA
  if (want_nccl) return std::make_unique<NcclCommunicator>(host, deadline);
#else
  if (kind == DeviceCommKind::Nccl) {
    throw CommError("backend nccl is not part of this build: set DPTRAIN_DEVICE_COMM=staging or auto");
  }
  (void)want_nccl;
  (void)deadline;
#endif
  return std::make_unique<StagingCommunicator>(host, runtime);
}

}  // namespace dptrain
