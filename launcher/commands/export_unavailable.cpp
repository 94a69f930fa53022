// `dptrain export` in a build without ONNX: one message saying what to install.
#include "launcher/commands/export_command.h"
#include "runtime/core/errors.h"

namespace dptrain::launcher {

int run_export(const ExportArgs&, Workers&) {
  throw UsageError("export: this dptrain was built without ONNX (CMake did not find libonnx-dev and libprotobuf-dev): "
                   "install them (scripts/install-deps.sh does), configure with CMake again and rebuild");
}

}  // namespace dptrain::launcher
