// Tensors: host memory, views, and memory of a backend reached only through that backend.
#include <gtest/gtest.h>

#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/tensor.h"
#include "tests/runtime/core/host_backend.h"

namespace dptrain {

TEST(Tensor, AllocatesZeroedAlignedMemory) {
  Tensor t({2, 3, 4});
  EXPECT_EQ(t.num_elements(), 24u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (size_t i = 0; i < t.num_elements(); ++i) EXPECT_EQ(t.data()[i], 0.0f);
}

TEST(Tensor, ViewsShareMemory) {
  Tensor t({4, 2});
  Tensor r = t.reshaped({8});
  r.data()[5] = 3.0f;
  EXPECT_EQ(t.data()[5], 3.0f);
  Tensor lead = t.leading(2);
  EXPECT_EQ(lead.shape(), (Shape{2, 2}));
  EXPECT_EQ(lead.data(), t.data());
}

TEST(Tensor, RejectsBadReshapeAndSlice) {
  Tensor t({4, 2});
  EXPECT_THROW(t.reshaped({3, 3}), ShapeError);
  EXPECT_THROW(t.leading(5), ShapeError);
  EXPECT_THROW(t.dim(2), ShapeError);
}

TEST(Tensor, CpuBackendMemoryIsAlignedZeroedHostMemory) {
  CpuBackend cpu;
  Tensor t({3, 5}, cpu);
  EXPECT_EQ(t.device(), DeviceKind::CPU);
  EXPECT_EQ(t.backend(), &cpu);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
  for (size_t i = 0; i < t.num_elements(); ++i) EXPECT_EQ(t.data()[i], 0.0f);
  t.fill(1.5f);
  const Tensor host = t.to_host();
  EXPECT_EQ(host.backend(), nullptr);
  for (size_t i = 0; i < host.num_elements(); ++i) EXPECT_EQ(host.data()[i], 1.5f);
}

TEST(Tensor, DeviceMemoryIsReachedThroughItsBackend) {
  testing::HostBackend device;
  Tensor d({4}, device);
  EXPECT_EQ(d.device(), DeviceKind::CUDA);
  EXPECT_EQ(device.fills, 1u) << "new device memory is zeroed by the backend";
  Tensor host({4});
  for (size_t i = 0; i < 4; ++i) host.data()[i] = static_cast<float>(i + 1);
  d.copy_from(host);
  EXPECT_EQ(device.to_device, 1u);
  const Tensor back = d.to_host();
  EXPECT_EQ(device.to_host, 1u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(back.data()[i], static_cast<float>(i + 1));
  Tensor copy = d.to(device);
  EXPECT_EQ(device.on_device, 1u);
  EXPECT_EQ(copy.backend(), &device);
  copy.reshaped({2, 2}).fill(0.5f);
  EXPECT_EQ(device.fills, 3u);  // d, the copy's allocation, the fill
  Tensor view = Tensor::view(copy.data() + 2, {2}, device);
  EXPECT_EQ(view.device(), DeviceKind::CUDA);
  host.leading(2).copy_from(view);
  EXPECT_EQ(device.to_host, 2u);
  EXPECT_EQ(host.data()[0], 0.5f);
  EXPECT_EQ(host.data()[2], 3.0f);
}

TEST(Tensor, PinnedMemoryIsHostMemoryFromTheBackend) {
  testing::HostBackend device;
  Tensor pinned = Tensor::pinned({7}, device);
  EXPECT_EQ(pinned.device(), DeviceKind::CPU);
  EXPECT_EQ(pinned.backend(), nullptr);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(pinned.data()[i], 0.0f);
  pinned.copy_from(Tensor({7}, device));
  EXPECT_EQ(device.to_host, 1u);
  EXPECT_THROW(pinned.copy_from(Tensor({8}, device)), ShapeError);
}

}  // namespace dptrain
