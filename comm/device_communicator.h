// The communicator that all-reduces gradients where the model keeps them.
#pragma once

#include <memory>

#include "comm/communicator.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// How device buffers are all-reduced.
enum class DeviceCommKind {
  Auto,     // NCCL where this build has it, else staged
  Nccl,     // NCCL; CommError when this build lacks it
  Staging,  // device -> host -> `host` communicator -> device
};

// Reads DPTRAIN_DEVICE_COMM (auto, nccl, staging; default auto). Error on any other value.
DeviceCommKind device_comm_from_environment();

// For gradients on `device`: nullptr on the CPU (use `host` itself); on a GPU a communicator
// over `host`'s ranks (a collective: every rank calls it) that takes device pointers. NCCL is
// bootstrapped through `host` and must come up within `deadline`.
std::unique_ptr<Communicator> make_device_communicator(Communicator& host, DeviceKind device, Deadline deadline,
                                                       DeviceCommKind kind = device_comm_from_environment());

}  // namespace dptrain
