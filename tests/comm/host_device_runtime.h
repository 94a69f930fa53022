// HostDeviceRuntime: a DeviceRuntime whose "device" memory is host memory, for testing code that
// works on device buffers (such as StagingCommunicator) on machines without a GPU.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "runtime/core/device.h"

namespace dptrain::testing {

// Counts the copies in each direction; everything else is plain host memory.
class HostDeviceRuntime final : public DeviceRuntime {
 public:
  const char* name() const override { return "host-test"; }
  size_t device_count(std::string* why) const override { return 1; }
  std::unique_ptr<BoundDevice> open(size_t, Precision) override { throw std::logic_error("not used"); }
  void* allocate(size_t bytes) override { return std::malloc(bytes ? bytes : 1); }
  void release(void* data) noexcept override { std::free(data); }
  void* allocate_pinned(size_t bytes) override { return allocate(bytes); }
  void release_pinned(void* data) noexcept override { release(data); }
  void copy_to_device(void* dst, const void* src, size_t bytes) override {
    ++to_device;
    std::memcpy(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    ++to_host;
    std::memcpy(dst, src, bytes);
  }
  void copy_on_device(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void fill(float* data, size_t count, float value) override {
    for (size_t i = 0; i < count; ++i) data[i] = value;
  }
  void synchronize() override {}
  std::unique_ptr<BatchStager> make_stager(size_t, size_t) override { throw std::logic_error("not used"); }
  void sgd_update(const SgdUpdate&) override { throw std::logic_error("not used"); }
  void adam_update(const AdamUpdate&) override { throw std::logic_error("not used"); }

  size_t to_device = 0;  // copies host -> "device"
  size_t to_host = 0;    // copies "device" -> host
};

}  // namespace dptrain::testing
