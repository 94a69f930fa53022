// HostBackend: a Backend whose "device" memory is host memory, for testing code that works on
// device buffers (tensors, StagingCommunicator, the registries) on machines without a GPU.
#pragma once

#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "runtime/core/backend.h"
#include "runtime/core/cpu_backend.h"

namespace dptrain::testing {

// Calls itself a device backend ("host-test", DeviceKind::CUDA) so that code treats its memory as
// device memory, and counts the copies in each direction, the fills and the optimizer updates;
// the memory is plain host memory and the updates are the CPU backend's.
class HostBackend final : public Backend {
 public:
  const char* name() const override { return "host-test"; }
  DeviceKind device() const override { return DeviceKind::CUDA; }
  std::string describe() const override { return "host memory standing in for a device"; }
  Precision precision() const override { return Precision::Float32; }
  void* allocate(size_t bytes) override { return std::aligned_alloc(64, (bytes / 64 + 1) * 64); }
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
  void copy_on_device(void* dst, const void* src, size_t bytes) override {
    ++on_device;
    std::memcpy(dst, src, bytes);
  }
  void fill(float* data, size_t count, float value) override {
    ++fills;
    for (size_t i = 0; i < count; ++i) data[i] = value;
  }
  void synchronize() override {}
  void axpy(float alpha, const float* x, float* y, size_t n) override { cpu_.axpy(alpha, x, y, n); }
  void scale(float* x, size_t n, float alpha) override { cpu_.scale(x, n, alpha); }
  void copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t row_floats,
                 size_t rows) override {
    cpu_.copy_rows(dst, dst_stride, src, src_stride, row_floats, rows);
  }
  double sum_squares(const float* x, size_t n) override { return cpu_.sum_squares(x, n); }
  std::unique_ptr<BatchStager> make_stager(size_t, size_t) override { throw std::logic_error("not used"); }
  void sgd_update(const SgdUpdate& update) override {
    ++updates;
    cpu_.sgd_update(update);
  }
  void adam_update(const AdamUpdate& update) override {
    ++updates;
    cpu_.adam_update(update);
  }

  size_t to_device = 0;  // copies host -> "device"
  size_t to_host = 0;    // copies "device" -> host
  size_t on_device = 0;  // copies "device" -> "device"
  size_t fills = 0;
  size_t updates = 0;  // optimizer updates

 private:
  CpuBackend cpu_;
};

}  // namespace dptrain::testing
