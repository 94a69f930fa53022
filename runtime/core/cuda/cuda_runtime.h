// The CUDA implementation of DeviceRuntime (see runtime/core/device.h).
#pragma once

#include "runtime/core/device.h"

namespace dptrain {

// The process's CUDA runtime; registered by runtime/core/device.cpp in CUDA builds.
DeviceRuntime& cuda_device_runtime();

}  // namespace dptrain
