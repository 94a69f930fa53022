// The communicator that all-reduces gradients where the model keeps them, and the registry of
// direct device transports (NCCL registers itself in comm/nccl/).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "runtime/core/backend.h"
#include "runtime/core/run_config.h"

namespace dptrain {

// For gradients in `backend`'s memory: nullptr on the CPU (use `host` itself); on a GPU a
// communicator over `host`'s ranks (a collective: every rank calls it) that takes device
// pointers, as `transport` (the config's comm.device_transport) asks: auto takes the backend's
// direct transport (NCCL) when there are several workers and the build has one, else host
// staging. A direct transport is bootstrapped through `host` and must come up within `deadline`.
// CommError naming the key when `transport` asks for a transport this build lacks.
std::unique_ptr<Communicator> make_device_communicator(Communicator& host, Backend& backend, Deadline deadline,
                                                       DeviceTransport transport);

// Makes a direct transport's communicator over `host`'s ranks (collective) for `backend`'s
// memory, up within `deadline`.
using DirectTransportFactory =
    std::function<std::unique_ptr<Communicator>(Communicator& host, Backend& backend, Deadline deadline)>;

// Adds a direct transport for the backend named `backend` ("cuda") when the program starts; a
// transport's own file declares one with DPTRAIN_REGISTER_DEVICE_TRANSPORT.
class DeviceTransportRegistrar {
 public:
  DeviceTransportRegistrar(DeviceTransport transport, const std::string& backend, DirectTransportFactory factory);
};

// Whether this build has the direct `transport` for the backend named `backend`.
bool has_device_transport(DeviceTransport transport, const std::string& backend);

}  // namespace dptrain

// Registers `factory` (a DirectTransportFactory) as transport `transport` (a DeviceTransport
// enumerator name: Nccl) of backend `backend` (cuda), at namespace scope in the transport's file.
// comm is linked whole-archive (cmake/parts.cmake), so the registration is not dropped.
#define DPTRAIN_REGISTER_DEVICE_TRANSPORT(transport, backend, factory)                               \
  static const ::dptrain::DeviceTransportRegistrar dptrain_device_transport_##transport##_##backend( \
      ::dptrain::DeviceTransport::transport, #backend, factory)
