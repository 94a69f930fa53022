#include "comm/device_communicator.h"

#include <map>
#include <utility>

#include "comm/staging_communicator.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Direct transports by (transport, backend name); filled by the registrars before main() runs.
std::map<std::pair<DeviceTransport, std::string>, DirectTransportFactory>& direct_transports() {
  static std::map<std::pair<DeviceTransport, std::string>, DirectTransportFactory> transports;
  return transports;
}

}  // namespace

DeviceTransportRegistrar::DeviceTransportRegistrar(DeviceTransport transport, const std::string& backend,
                                                   DirectTransportFactory factory) {
  direct_transports()[{transport, backend}] = std::move(factory);
}

bool has_device_transport(DeviceTransport transport, const std::string& backend) {
  return direct_transports().count({transport, backend}) > 0;
}

std::unique_ptr<Communicator> make_device_communicator(Communicator& host, Backend& backend, Deadline deadline,
                                                       DeviceTransport transport) {
  if (backend.device() == DeviceKind::CPU) return nullptr;
  const std::string name = backend.name();
  if (transport == DeviceTransport::Nccl && !has_device_transport(DeviceTransport::Nccl, name)) {
    throw CommError(std::string("comm.device_transport is nccl, but this build has no NCCL transport for the ") + name +
                    " backend: set comm.device_transport: staging or auto");
  }
  // One worker never all-reduces (GradientReducer skips it), so a direct transport is not worth starting.
  const bool direct = transport == DeviceTransport::Nccl || (transport == DeviceTransport::Auto && host.size() > 1 &&
                                                             has_device_transport(DeviceTransport::Nccl, name));
  if (direct) return direct_transports().at({DeviceTransport::Nccl, name})(host, backend, deadline);
  return std::make_unique<StagingCommunicator>(host, backend);
}

}  // namespace dptrain
