// The checked-call macros: a failing CUDA, cuBLAS, cuDNN or NCCL call becomes a typed exception
// naming the call, file:line, host and the library's message. Needs no GPU.
#include <gtest/gtest.h>

#include <string>

#include "comm/nccl/nccl_communicator.h"
#include "runtime/core/cuda/cuda_check.h"
#include "tests/test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {


void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' missing from: " << text;
}

TEST(DeviceChecks, CudaFailureNamesCallPlaceAndLibraryMessage) {
  const std::string m = test_util::error_of<DeviceError>([] { DPTRAIN_CUDA_CHECK(cudaErrorMemoryAllocation); });
  expect_contains(m, "CUDA error 2");
  expect_contains(m, cudaGetErrorString(cudaErrorMemoryAllocation));
  expect_contains(m, "cudaErrorMemoryAllocation");
  expect_contains(m, "test_gpu_checks.cpp:");
  expect_contains(m, device_where());
}

TEST(DeviceChecks, CublasAndCudnnFailuresNameTheirLibrary) {
  const std::string b = test_util::error_of<DeviceError>([] { DPTRAIN_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED); });
  expect_contains(b, "cuBLAS error");
  expect_contains(b, cublasGetStatusString(CUBLAS_STATUS_NOT_INITIALIZED));
  const std::string d = test_util::error_of<DeviceError>([] { DPTRAIN_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM); });
  expect_contains(d, "cuDNN error");
  expect_contains(d, cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM));
  expect_contains(d, "CUDNN_STATUS_BAD_PARAM");
}

TEST(DeviceChecks, SuccessDoesNotThrow) {
  EXPECT_NO_THROW(DPTRAIN_CUDA_CHECK(cudaSuccess));
  EXPECT_NO_THROW(DPTRAIN_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
  EXPECT_NO_THROW(DPTRAIN_CUDNN_CHECK(CUDNN_STATUS_SUCCESS));
  EXPECT_NO_THROW(DPTRAIN_NCCL_CHECK(nullptr, ncclSuccess));
}

TEST(DeviceChecks, NcclFailureIsACommErrorNamingTheRankAndHost) {
  const std::string m = test_util::error_of<CommError>([] { DPTRAIN_NCCL_CHECK(nullptr, ncclSystemError); });
  expect_contains(m, "NCCL error");
  expect_contains(m, ncclGetErrorString(ncclSystemError));
  expect_contains(m, "ncclSystemError");
  expect_contains(m, device_where());
}

}  // namespace
}  // namespace dptrain::testing
