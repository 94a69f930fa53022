// RAII wrappers of the cuDNN descriptors the CUDA layers use: created in the constructor,
// destroyed in the destructor, set (and reset) with checked calls.
#pragma once

#include <cudnn.h>

#include <cstddef>

#include "runtime/core/cuda/cuda_check.h"

namespace dptrain {

// An NCHW tensor descriptor, float32 unless another element type is given.
class TensorDescriptor {
 public:
  TensorDescriptor() { DPTRAIN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_)); }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc_); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;

  void set(size_t n, size_t c, size_t h, size_t w, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    DPTRAIN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, type, static_cast<int>(n),
                                                   static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)));
  }
  cudnnTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// A KCRS filter descriptor, float32 unless another element type is given.
class FilterDescriptor {
 public:
  FilterDescriptor() { DPTRAIN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc_)); }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(desc_); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;

  void set(size_t k, size_t c, size_t r, size_t s, cudnnDataType_t type = CUDNN_DATA_FLOAT) {
    DPTRAIN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc_, type, CUDNN_TENSOR_NCHW, static_cast<int>(k),
                                                   static_cast<int>(c), static_cast<int>(r), static_cast<int>(s)));
  }
  cudnnFilterDescriptor_t get() const { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

// A 2-D cross-correlation descriptor (what PyTorch and the CPU layer compute), float32 accumulation
// whatever the data type (for bf16 data: cuDNN's "pseudo bf16" configuration).
class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor() { DPTRAIN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc_)); }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(desc_); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;

  // Square padding, stride and dilation; `groups` channel groups (1: a dense convolution).
  void set(size_t padding, size_t stride, size_t dilation, size_t groups, cudnnMathType_t math) {
    const int p = static_cast<int>(padding), s = static_cast<int>(stride), d = static_cast<int>(dilation);
    DPTRAIN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc_, p, p, s, s, d, d, CUDNN_CROSS_CORRELATION,
                                                        CUDNN_DATA_FLOAT));
    DPTRAIN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(desc_, static_cast<int>(groups)));
    set_math_type(math);
  }
  // The math type an algorithm runs with: what the descriptor was set up with, or the one cuDNN
  // reported for the algorithm chosen (cudnnConvolution*AlgoPerf_t::mathType), written back.
  void set_math_type(cudnnMathType_t math) { DPTRAIN_CUDNN_CHECK(cudnnSetConvolutionMathType(desc_, math)); }
  cudnnConvolutionDescriptor_t get() const { return desc_; }

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

// A 2-D pooling window: square, or a whole plane.
class PoolingDescriptor {
 public:
  PoolingDescriptor() { DPTRAIN_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&desc_)); }
  ~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(desc_); }
  PoolingDescriptor(const PoolingDescriptor&) = delete;
  PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;

  void set(cudnnPoolingMode_t mode, size_t kernel, size_t stride, size_t padding) {
    const int k = static_cast<int>(kernel), s = static_cast<int>(stride), p = static_cast<int>(padding);
    DPTRAIN_CUDNN_CHECK(cudnnSetPooling2dDescriptor(desc_, mode, CUDNN_PROPAGATE_NAN, k, k, p, p, s, s));
  }
  // One window over a whole height x width plane, unpadded: a global pooling.
  void set_whole_plane(cudnnPoolingMode_t mode, size_t height, size_t width) {
    const int h = static_cast<int>(height), w = static_cast<int>(width);
    DPTRAIN_CUDNN_CHECK(cudnnSetPooling2dDescriptor(desc_, mode, CUDNN_PROPAGATE_NAN, h, w, 0, 0, h, w));
  }
  cudnnPoolingDescriptor_t get() const { return desc_; }

 private:
  cudnnPoolingDescriptor_t desc_ = nullptr;
};

// An activation function descriptor (relu, sigmoid, tanh, or swish with beta 1, which is silu).
class ActivationDescriptor {
 public:
  explicit ActivationDescriptor(cudnnActivationMode_t mode) {
    DPTRAIN_CUDNN_CHECK(cudnnCreateActivationDescriptor(&desc_));
    DPTRAIN_CUDNN_CHECK(cudnnSetActivationDescriptor(desc_, mode, CUDNN_PROPAGATE_NAN, 0.0));
    if (mode == CUDNN_ACTIVATION_SWISH) DPTRAIN_CUDNN_CHECK(cudnnSetActivationDescriptorSwishBeta(desc_, 1.0));
  }
  ~ActivationDescriptor() { cudnnDestroyActivationDescriptor(desc_); }
  ActivationDescriptor(const ActivationDescriptor&) = delete;
  ActivationDescriptor& operator=(const ActivationDescriptor&) = delete;

  cudnnActivationDescriptor_t get() const { return desc_; }

 private:
  cudnnActivationDescriptor_t desc_ = nullptr;
};

// A cuDNN activation over a whole float32 batch seen as one (1, count, 1, 1) tensor, for the
// element-wise layers; the tensor descriptor is set again only when the count changes.
class FlatActivation {
 public:
  explicit FlatActivation(cudnnActivationMode_t mode) : activation_(mode) {}

  // y = f(x) over `count` values.
  void forward(cudnnHandle_t cudnn, const float* x, float* y, size_t count) {
    plan(count);
    const float one = 1.0f, zero = 0.0f;
    DPTRAIN_CUDNN_CHECK(
        cudnnActivationForward(cudnn, activation_.get(), &one, desc_.get(), x, &zero, desc_.get(), y));
  }
  // dx = f'(x) dy over `count` values (cuDNN reads x, y or both, by function).
  void backward(cudnnHandle_t cudnn, const float* x, const float* y, const float* dy, float* dx, size_t count) {
    plan(count);
    const float one = 1.0f, zero = 0.0f;
    DPTRAIN_CUDNN_CHECK(cudnnActivationBackward(cudnn, activation_.get(), &one, desc_.get(), y, desc_.get(), dy,
                                                desc_.get(), x, &zero, desc_.get(), dx));
  }

 private:
  void plan(size_t count) {
    if (count == planned_count_) return;
    desc_.set(1, count, 1, 1);
    planned_count_ = count;
  }

  ActivationDescriptor activation_;
  TensorDescriptor desc_;
  size_t planned_count_ = 0;
};

}  // namespace dptrain
