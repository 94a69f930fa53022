// Checked calls into CUDA, cuBLAS and cuDNN: a failure throws DeviceError naming the call,
// file:line, host and rank, and the library's own error string.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <string>

#include "runtime/core/errors.h"

namespace dptrain {

// A CUDA, cuBLAS, cuDNN or NCCL call that failed, or a GPU that cannot be used as configured.
class DeviceError : public Error {
 public:
  using Error::Error;
};

// "rank R on HOST" from the launcher's environment (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID),
// or "HOST" when not started by a launcher.
std::string device_where();

// Throws DeviceError: "<library> error <code> (<message>) in <call> at <file:line> on rank R on HOST".
[[noreturn]] void throw_device_error(const char* library, long code, const char* message, const char* call,
                                     const char* file, int line);

inline void cuda_check(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) throw_device_error("CUDA", status, cudaGetErrorString(status), call, file, line);
}
inline void cublas_check(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw_device_error("cuBLAS", status, cublasGetStatusString(status), call, file, line);
  }
}
inline void cudnn_check(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status != CUDNN_STATUS_SUCCESS) throw_device_error("cuDNN", status, cudnnGetErrorString(status), call, file, line);
}

}  // namespace dptrain

#define DPTRAIN_CUDA_CHECK(call) ::dptrain::cuda_check((call), #call, __FILE__, __LINE__)
#define DPTRAIN_CUBLAS_CHECK(call) ::dptrain::cublas_check((call), #call, __FILE__, __LINE__)
#define DPTRAIN_CUDNN_CHECK(call) ::dptrain::cudnn_check((call), #call, __FILE__, __LINE__)
// After a kernel launch: reports a bad launch configuration at the launch site.
#define DPTRAIN_CUDA_CHECK_LAUNCH() DPTRAIN_CUDA_CHECK(cudaGetLastError())
