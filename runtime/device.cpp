// Registration of the accelerator runtimes this build has: the one place in runtime/ that knows
// at compile time whether the CUDA backend exists.
#include "runtime/device.h"

#include "runtime/errors.h"

#ifdef DPTRAIN_HAVE_CUDA
#include "runtime/cuda/cuda_runtime.h"
#endif

namespace dptrain {

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
