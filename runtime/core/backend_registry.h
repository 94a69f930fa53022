// The backend registry: which backends this build has (cpu always, cuda in CUDA builds), how many
// devices each can see, and opening one for a worker. The one place that knows at compile time
// which backends exist.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/backend.h"
#include "runtime/core/cpu_convolution.h"
#include "runtime/core/determinism.h"

namespace dptrain {

// What a worker asks of the backend it opens.
struct BackendRequest {
  size_t workers_on_node = 1;  // workers sharing this node's devices
  size_t local_rank = 0;       // this worker's rank among them: the device it binds to
  Precision precision = Precision::Float32;
  Determinism determinism = Determinism::Fastest;  // of the GPU's convolution algorithms; no effect on the CPU
  CpuConvolution cpu_convolution = CpuConvolution::Auto;  // the CPU's conv2d kernels; no effect on a GPU
};

// Names of the backends this build has: "cpu", then "cuda" in CUDA builds.
std::vector<std::string> built_backends();

// Devices of kind `device` this process can use: 1 for the CPU; for a GPU 0 when the build lacks
// the backend, or there is no driver or no device (then `why`, when given, says which). Never
// prints and never throws.
size_t visible_device_count(DeviceKind device, std::string* why = nullptr);

// The backend for `device`, bound for this worker (for a GPU: gpu_for_worker's device, with its
// streams and library handles). UsageError when this build lacks the backend, when no device is
// visible, when several are and the node has more workers than devices, or when the backend cannot
// compute in request.precision.
std::unique_ptr<Backend> open_backend(DeviceKind device, const BackendRequest& request);

// GPUs this process can use: visible_device_count(DeviceKind::CUDA, why).
size_t visible_gpu_count(std::string* why = nullptr);

// The device that config value `choice` ("auto", "cpu" or "cuda") means here: auto is cuda when a
// GPU is visible, else cpu.
DeviceKind resolve_device(const std::string& choice);

}  // namespace dptrain
