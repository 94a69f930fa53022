// DeviceRuntime: what runtime/ needs from an accelerator backend (memory, copies, element-wise
// kernels), so that code built in every configuration can use a backend that only some builds have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dptrain {

// The arithmetic of convolutions and dense layers. Parameters, gradients and optimizer state are
// float32 in every mode; the modes differ only on the GPU (the CPU always computes in float32).
enum class Precision {
  Float32,  // float32 inputs and sums
  Tf32,     // float32 storage, products on TF32 tensor cores (inputs rounded to 10-bit mantissas)
  Bf16,     // bf16 copies of the products' inputs, float32 sums and outputs; float32 master weights
};

// "float32", "tf32" or "bf16", as the config spells it.
const char* to_string(Precision precision);

// The precision named `text` (one of to_string's spellings); UsageError listing them otherwise.
Precision parse_precision(const std::string& text);

// One SGD update over flat buffers (see runtime/train/optimizer.h for the formulas).
struct SgdUpdate {
  float* params = nullptr;          // (n)
  const float* grads = nullptr;     // (n)
  float* momentum = nullptr;        // (n), null without momentum
  size_t n = 0;
  float lr = 0, mu = 0, weight_decay = 0;
  bool nesterov = false;
};

// One Adam/AdamW update over flat buffers, with the per-step scalars already worked out.
struct AdamUpdate {
  float* params = nullptr;        // (n)
  const float* grads = nullptr;   // (n)
  float* exp_avg = nullptr;       // (n)
  float* exp_avg_sq = nullptr;    // (n)
  size_t n = 0;
  float beta1 = 0, beta2 = 0, one_minus_beta1 = 0, one_minus_beta2 = 0, eps = 0;
  float l2 = 0, shrink = 1, step_size = 0, bias_correction2_sqrt = 1;
};

// The device this process computes on, once bound: streams and library handles live behind it.
class BoundDevice {
 public:
  virtual ~BoundDevice() = default;
  // The device's ordinal on this node.
  virtual size_t ordinal() const = 0;
  // "NVIDIA H100 80GB HBM3 (device 0, sm_90)".
  virtual std::string describe() const = 0;
  // The precision in effect (the configured one, or as an environment override changed it).
  virtual Precision precision() const = 0;
};

// A training batch in device memory, as handed out by BatchStager::upload.
struct DeviceBatch {
  const float* inputs = nullptr;    // (N, ...sample shape)
  const int32_t* labels = nullptr;  // (N)
};

// Moves host batches to the device: each is copied into page-locked host memory, then to the
// device on a copy stream of its own, so the copy overlaps whatever the compute stream still
// has queued; the compute stream waits for the copy with an event. Two slots alternate, so a
// batch stays valid on the device until the upload after next.
class BatchStager {
 public:
  virtual ~BatchStager() = default;
  // `count` floats of inputs and `n` labels; both host memory, free to reuse when this returns.
  virtual DeviceBatch upload(const float* inputs, size_t count, const int32_t* labels, size_t n) = 0;
};

// Memory and kernels of one accelerator backend. Operations are ordered on the bound device's
// compute stream; copies that involve host memory return once the host side may be reused.
class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;
  virtual const char* name() const = 0;
  // Devices visible to this process; 0 (never an error, nothing printed) when there is no driver
  // or no device. `why` receives the reason when 0.
  virtual size_t device_count(std::string* why = nullptr) const = 0;
  // Binds this process to device `ordinal` and creates its streams and library handles, computing
  // convolutions and dense layers in `precision`.
  virtual std::unique_ptr<BoundDevice> open(size_t ordinal, Precision precision) = 0;

  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* data) noexcept = 0;
  // Page-locked host memory, for copies that overlap computation.
  virtual void* allocate_pinned(size_t bytes) = 0;
  virtual void release_pinned(void* data) noexcept = 0;

  virtual void copy_to_device(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual void copy_on_device(void* device_dst, const void* device_src, size_t bytes) = 0;
  virtual void fill(float* device_data, size_t count, float value) = 0;
  // Waits for everything queued on the compute stream.
  virtual void synchronize() = 0;

  // A stager for batches of up to `max_floats` input floats and `max_labels` labels.
  virtual std::unique_ptr<BatchStager> make_stager(size_t max_floats, size_t max_labels) = 0;

  virtual void sgd_update(const SgdUpdate& update) = 0;
  virtual void adam_update(const AdamUpdate& update) = 0;
};

// The CUDA runtime when this build has the CUDA backend, else nullptr.
DeviceRuntime* cuda_runtime();

// The CUDA runtime, or UsageError saying that this build has only the cpu backend.
DeviceRuntime& require_cuda_runtime();

}  // namespace dptrain
