// The communicator that all-reduces gradients where the model keeps them, and the registry of
// direct device transports (NCCL registers itself in comm/nccl/).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "runtime/core/run_config.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// For gradients on `device`: nullptr on the CPU (use `host` itself); on a GPU a communicator over
// `host`'s ranks (a collective: every rank calls it) that takes device pointers, as `transport`
// (the config's comm.device_transport) asks: auto takes the device's direct transport (NCCL) when
// there are several workers and the build has one, else host staging. A direct transport is
// bootstrapped through `host` and must come up within `deadline`. CommError naming the key when
// `transport` asks for a transport this build lacks.
std::unique_ptr<Communicator> make_device_communicator(Communicator& host, DeviceKind device, Deadline deadline,
                                                       DeviceTransport transport);

// Makes a direct transport's communicator over `host`'s ranks (collective), up within `deadline`.
using DirectTransportFactory = std::function<std::unique_ptr<Communicator>(Communicator& host, Deadline deadline)>;

// Adds a direct transport for the device named `device` ("cuda") when the program starts; a
// transport's own file declares one with DPTRAIN_REGISTER_DEVICE_TRANSPORT.
class DeviceTransportRegistrar {
 public:
  DeviceTransportRegistrar(DeviceTransport transport, const std::string& device, DirectTransportFactory factory);
};

// Whether this build has the direct `transport` for `device`.
bool has_device_transport(DeviceTransport transport, const std::string& device);

}  // namespace dptrain

// Registers `factory` (a DirectTransportFactory) as transport `transport` (a DeviceTransport
// enumerator name: Nccl) of device `device` (cuda), at namespace scope in the transport's file.
#define DPTRAIN_REGISTER_DEVICE_TRANSPORT(transport, device, factory)                                 \
  static const ::dptrain::DeviceTransportRegistrar dptrain_device_transport_##transport##_##device( \
      ::dptrain::DeviceTransport::transport, #device, factory)
