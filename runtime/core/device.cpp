// Registration of the accelerator runtimes this build has: the one place in runtime/ that knows
// at compile time whether the CUDA backend exists.
#include "runtime/core/device.h"

#include "runtime/core/errors.h"

#ifdef DPTRAIN_HAVE_CUDA
#include "runtime/core/cuda/cuda_runtime.h"
#endif

namespace dptrain {

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::Float32:
      return "float32";
    case Precision::Tf32:
      return "tf32";
    case Precision::Bf16:
      return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& text) {
  for (Precision p : {Precision::Float32, Precision::Tf32, Precision::Bf16}) {
    if (text == to_string(p)) return p;
  }
  throw UsageError("unknown precision '" + text + "' (known: float32, tf32, bf16)");
}

DeviceRuntime* cuda_runtime() {
#ifdef DPTRAIN_HAVE_CUDA
  return &cuda_device_runtime();
#else
  return nullptr;
#endif
}

DeviceRuntime& require_cuda_runtime() {
  DeviceRuntime* runtime = cuda_runtime();
  if (!runtime) {
    throw UsageError(
        "device 'cuda' is not available: this build has only the cpu backend (set device: cpu, or rebuild with "
        "-DDPTRAIN_CUDA=ON where nvcc, cuDNN and NCCL are installed)");
  }
  return *runtime;
}

}  // namespace dptrain
