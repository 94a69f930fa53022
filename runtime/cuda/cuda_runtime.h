// The CUDA implementation of DeviceRuntime (see runtime/device.h).
#pragma once

#include "runtime/device.h"

namespace dptrain {

// The process's CUDA runtime; registered by runtime/device.cpp in CUDA builds.
DeviceRuntime& cuda_device_runtime();

}  // namespace dptrain
