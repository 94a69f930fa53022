// Backend: the one interface through which tensors, layers and optimizers reach the CPU or a GPU
// (memory, copies, fill, synchronisation, batch staging, optimizer updates). The backend registry
// (runtime/core/backend_registry.h) opens one per worker; the Context owns it and passes it on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/precision.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Whether SGD steps along the momentum buffer (classic) or looks one step ahead (Nesterov).
enum class MomentumKind { Classic, Nesterov };

// A range [begin, end) of elements of a flat buffer.
struct ElementSpan {
  size_t begin = 0, end = 0;
};

// One SGD update over flat buffers (see runtime/train/optimizer.h for the formulas).
struct SgdUpdate {
  float* params = nullptr;       // (n)
  const float* grads = nullptr;  // (n)
  float* momentum = nullptr;     // (n), null without momentum
  size_t n = 0;
  float lr = 0, mu = 0, weight_decay = 0;
  MomentumKind momentum_kind = MomentumKind::Classic;
};

// One Adam/AdamW update over flat buffers, with the per-step scalars already worked out.
struct AdamUpdate {
  float* params = nullptr;       // (n)
  const float* grads = nullptr;  // (n)
  float* exp_avg = nullptr;      // (n)
  float* exp_avg_sq = nullptr;   // (n)
  size_t n = 0;
  float beta1 = 0, beta2 = 0, one_minus_beta1 = 0, one_minus_beta2 = 0, eps = 0;
  float l2 = 0, shrink = 1, step_size = 0, bias_correction2_sqrt = 1;
};

// Whether a conversion overwrites its destination or adds to it.
enum class Accumulate { Overwrite, Add };

// A training batch where the backend computes, as handed out by BatchStager::upload.
struct DeviceBatch {
  const float* inputs = nullptr;    // (N, ...sample shape)
  const int32_t* labels = nullptr;  // (N)
};

// Moves host batches to where the backend computes. On a GPU each is copied into page-locked
// host memory, then to the device on a copy stream of its own, so the copy overlaps whatever the
// compute stream still has queued; the compute stream waits for the copy with an event. Two slots
// alternate, so a batch stays valid on the device until the upload after next. On the CPU the
// batch is used where it is: upload returns the caller's own pointers.
class BatchStager {
 public:
  virtual ~BatchStager() = default;
  // `count` floats of inputs and `n` labels, both host memory. ShapeError beyond the sizes the
  // stager was made for.
  virtual DeviceBatch upload(const float* inputs, size_t count, const int32_t* labels, size_t n) = 0;
};

// One compute backend, bound for this worker: the CPU, or one GPU with its streams and library
// handles. Work is queued in order on the backend's compute stream (the CPU does it at once);
// copies that involve host memory return once the host side may be reused. Tensors, layers,
// models and optimizers made with a backend must not outlive it.
class Backend {
 public:
  virtual ~Backend() = default;
  // "cpu" or "cuda": the key of its layers in the LayerRegistry and of its device transports.
  virtual const char* name() const = 0;
  // Where allocate() memory lives.
  virtual DeviceKind device() const = 0;
  // "cpu", or the GPU: "NVIDIA H100 80GB HBM3 (device 0, sm_90)".
  virtual std::string describe() const = 0;
  // The precision convolutions and dense layers compute in (float32 on the CPU).
  virtual Precision precision() const = 0;

  // Memory on device(), at least 64-byte aligned.
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* data) noexcept = 0;
  // Host memory whose copies to and from device() can overlap computation (page-locked on a GPU).
  virtual void* allocate_pinned(size_t bytes) = 0;
  virtual void release_pinned(void* data) noexcept = 0;

  virtual void copy_to_device(void* device_dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* device_src, size_t bytes) = 0;
  virtual void copy_on_device(void* device_dst, const void* device_src, size_t bytes) = 0;
  // data[0, count) = value, for memory on device().
  virtual void fill(float* device_data, size_t count, float value) = 0;
  // Waits for everything queued on the compute stream.
  virtual void synchronize() = 0;

  // y[0, n) += alpha * x[0, n), both on device(): gradients of an output that feeds several layers,
  // and the merge layers. Queued on the compute stream.
  virtual void axpy(float alpha, const float* x, float* y, size_t n) = 0;
  // y[0, n) = a[0, n) + b[0, n), all on device() (y may be a or b): the add layer's forward.
  // Queued on the compute stream. This default copies a, then adds b with axpy; the CPU does it in
  // one pass.
  virtual void add(const float* a, const float* b, float* y, size_t n);
  // Copies `rows` rows of `row_floats` floats from src (rows `src_stride` floats apart) to dst (rows
  // `dst_stride` floats apart), both on device(): concatenation along channels. Queued.
  virtual void copy_rows(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t row_floats,
                         size_t rows) = 0;
  // x[0, n) *= alpha, on device(). Queued on the compute stream.
  virtual void scale(float* x, size_t n, float alpha) = 0;
  // The sum of x[i]^2 over [0, n), accumulated in double; waits for the compute stream (a host value).
  virtual double sum_squares(const float* x, size_t n) = 0;
  // Gradient clipping as torch's clip_grad_norm_: *norm (one double on device()) becomes the L2
  // norm of x over `spans` (squares summed in double, span by span in order); when
  // max_norm / (norm + 1e-6) < 1 the spans are scaled by that coefficient. Here, with host values
  // (sum_squares, scale); a GPU keeps the norm on the device and queues it all, without waiting.
  virtual void clip_to_norm(float* x, const std::vector<ElementSpan>& spans, double max_norm, double* norm);

  // to = from (or to += from), element by element, between any two element types (float32 and
  // bf16, rounded to the nearest bf16, ties to even; an Add sums in float32 and rounds once), both
  // on device() with the same element count: the model's conversions between layers whose
  // activations differ in type, and gradients added up. Queued on the compute stream. Here, on the
  // host (the CPU); a GPU runs it as one kernel.
  virtual void convert(const Tensor& from, Tensor& to, Accumulate mode);

  // A stager for batches of up to `max_floats` input floats and `max_labels` labels.
  virtual std::unique_ptr<BatchStager> make_stager(size_t max_floats, size_t max_labels) = 0;

  // One optimizer update over flat buffers on device(), queued on the compute stream.
  virtual void sgd_update(const SgdUpdate& update) = 0;
  virtual void adam_update(const AdamUpdate& update) = 0;
};

}  // namespace dptrain
