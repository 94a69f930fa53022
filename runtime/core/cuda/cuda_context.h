// CudaContext: the GPU this process is bound to, with its streams and cuBLAS/cuDNN handles.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>

#include "runtime/core/determinism.h"
#include "runtime/core/precision.h"

namespace dptrain {

// Owns the bound device's compute stream (layers, optimizer), copy stream (input batches) and
// library handles, all bound to the compute stream. The CUDA backend (cuda_backend.h) owns one and
// hands it to the CUDA layers and the NCCL communicator it creates, which keep a reference.
class CudaContext final {
 public:
  // cudaSetDevice(ordinal), then the streams and handles, computing in `precision`, with the
  // convolution algorithms `determinism` allows.
  explicit CudaContext(size_t ordinal, Precision precision = Precision::Float32,
                       Determinism determinism = Determinism::Fastest);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  // The device's ordinal on this node.
  size_t ordinal() const { return ordinal_; }
  // "NVIDIA H100 80GB HBM3 (device 0, sm_90)", with the precision unless float32 and
  // "deterministic" where only deterministic algorithms are used.
  std::string describe() const;

  cudaStream_t stream() const { return stream_; }
  cudaStream_t copy_stream() const { return copy_stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  cudnnHandle_t cudnn() const { return cudnn_; }

  Precision precision() const { return precision_; }
  // Applies to cuBLAS at once and to every layer call afterwards (convolutions re-plan).
  // UsageError for bf16 on a GPU older than sm_80.
  void set_precision(Precision precision);
  // Which convolution algorithms layers may choose; fixed for the context's lifetime.
  Determinism determinism() const { return determinism_; }

 private:
  void release() noexcept;

  size_t ordinal_;
  std::string name_;
  int major_ = 0, minor_ = 0;
  Precision precision_ = Precision::Float32;
  Determinism determinism_ = Determinism::Fastest;
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
};

// An owned non-blocking CUDA stream on the current device, destroyed with its owner; so a
// constructor that throws after creating one does not leak it.
class CudaStream {
 public:
  CudaStream();
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t get() const { return stream_; }
  // Hands the stream over: the caller destroys it from now on.
  cudaStream_t release() {
    cudaStream_t stream = stream_;
    stream_ = nullptr;
    return stream;
  }

 private:
  cudaStream_t stream_ = nullptr;
};

// An owned CUDA event (timing disabled): used to order streams and to poll for completion.
class CudaEvent {
 public:
  CudaEvent();
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream);
  // True once all work recorded before it is done; DeviceError on a device fault.
  bool done() const;

 private:
  cudaEvent_t event_ = nullptr;
};

// A device buffer that only grows (workspaces, per-batch scratch). Owned, never shared.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // At least `bytes` bytes; the previous contents are lost when it grows.
  void* reserve(size_t bytes);
  void* get() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace dptrain
