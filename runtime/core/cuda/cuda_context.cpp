#include "runtime/core/cuda/cuda_context.h"

#include "runtime/core/cuda/cuda_check.h"

namespace dptrain {

CudaContext::CudaContext(size_t ordinal, Precision precision, Determinism determinism)
    : ordinal_(ordinal), precision_(precision), determinism_(determinism) {
  DPTRAIN_CUDA_CHECK(cudaSetDevice(static_cast<int>(ordinal)));
  cudaDeviceProp props{};
  DPTRAIN_CUDA_CHECK(cudaGetDeviceProperties(&props, static_cast<int>(ordinal)));
  name_ = props.name;
  major_ = props.major;
  minor_ = props.minor;
  try {
    DPTRAIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    DPTRAIN_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    DPTRAIN_CUBLAS_CHECK(cublasCreate(&cublas_));
    DPTRAIN_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    // cuBLAS sums without atomics unless allowed; say so where repeatable runs are asked for.
    if (determinism_ == Determinism::Required) {
      DPTRAIN_CUBLAS_CHECK(cublasSetAtomicsMode(cublas_, CUBLAS_ATOMICS_NOT_ALLOWED));
    }
    DPTRAIN_CUDNN_CHECK(cudnnCreate(&cudnn_));
    DPTRAIN_CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
    set_precision(precision_);
  } catch (...) {
    release();
    throw;
  }
}

CudaContext::~CudaContext() { release(); }

void CudaContext::release() noexcept {
  // Must not throw: errors here (a device already lost) are ignored.
  if (stream_) cudaStreamSynchronize(stream_);
  if (cudnn_) cudnnDestroy(cudnn_);
  if (cublas_) cublasDestroy(cublas_);
  if (copy_stream_) cudaStreamDestroy(copy_stream_);
  if (stream_) cudaStreamDestroy(stream_);
  cudnn_ = nullptr;
  cublas_ = nullptr;
  copy_stream_ = stream_ = nullptr;
}

std::string CudaContext::describe() const {
  return name_ + " (device " + std::to_string(ordinal_) + ", sm_" + std::to_string(major_) + std::to_string(minor_) +
         (precision_ == Precision::Float32 ? "" : std::string(", ") + to_string(precision_)) +
         (determinism_ == Determinism::Required ? ", deterministic" : "") + ")";
}

void CudaContext::set_precision(Precision precision) {
  if (precision == Precision::Bf16 && major_ < 8) {
    throw UsageError("precision bf16 needs a GPU of compute capability 8.0 (Ampere) or newer; " + name_ + " is sm_" +
                     std::to_string(major_) + std::to_string(minor_) + ": set precision: float32 or tf32");
  }
  precision_ = precision;
  // bf16 products choose tensor cores themselves (cublasGemmEx); the mode matters for float32 ones.
  DPTRAIN_CUBLAS_CHECK(cublasSetMathMode(
      cublas_, precision == Precision::Tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

CudaStream::CudaStream() { DPTRAIN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }

CudaStream::~CudaStream() {
  if (stream_) cudaStreamDestroy(stream_);
}

CudaEvent::CudaEvent() { DPTRAIN_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }

CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);
}

void CudaEvent::record(cudaStream_t stream) { DPTRAIN_CUDA_CHECK(cudaEventRecord(event_, stream)); }

bool CudaEvent::done() const {
  const cudaError_t status = cudaEventQuery(event_);
  if (status == cudaErrorNotReady) return false;
  DPTRAIN_CUDA_CHECK(status);
  return true;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_) cudaFree(data_);
}

void* DeviceBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_ && data_) return data_;
  if (data_) {
    // The old buffer may still be read by queued work.
    DPTRAIN_CUDA_CHECK(cudaDeviceSynchronize());
    DPTRAIN_CUDA_CHECK(cudaFree(data_));
    data_ = nullptr;
    bytes_ = 0;
  }
  DPTRAIN_CUDA_CHECK(cudaMalloc(&data_, bytes > 0 ? bytes : 1));
  bytes_ = bytes;
  return data_;
}

}  // namespace dptrain
