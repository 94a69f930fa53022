// Float32 convolution training kernels from oneDNN (forward, backward data, backward weights), for
// the CPU conv2d layers whose shape oneDNN runs with its JIT kernels. The tensors stay NCHW between
// layers; each call reorders its inputs into the blocked layouts the kernels read and its outputs
// back, through scratch buffers that all layers of a thread share.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "layers/cpu/conv_shape.h"

namespace dptrain {

class OneDnnConvolution {
 public:
  // oneDNN's kernels for `shape` (with a bias when `bias`), or null, with the reason in `why`, when
  // the build has no oneDNN or oneDNN has no JIT kernel for one of the three directions (only its
  // GEMM-based or reference ones, which the im2col path outruns).
  static std::unique_ptr<OneDnnConvolution> make(const ConvShape& shape, bool bias, std::string* why = nullptr);
  ~OneDnnConvolution();
  OneDnnConvolution(const OneDnnConvolution&) = delete;
  OneDnnConvolution& operator=(const OneDnnConvolution&) = delete;

  // y (n, out_channels, Ho, Wo) = the convolution of x (n, C, H, W) with `weight`
  // (out_channels, C / groups, kernel, kernel) plus `bias` (out_channels; null without one).
  // Host memory; threads as OpenMP allows. With `keep_input` (a training step) the blocked copy of x
  // is kept for backward, which then need not make it again: x must not change in between.
  void forward(const float* x, size_t n, const float* weight, const float* bias, float* y, bool keep_input);

  // From the output gradient dy (n, out_channels, Ho, Wo): writes (not adds) dweight and, with a
  // bias, dbias summed over the batch, and dx (n, C, H, W) unless it is null.
  void backward(const float* x, const float* dy, size_t n, const float* weight, float* dx, float* dweight,
                float* dbias);

  // Micro-shard kernels, for train.reproducible: each call computes one micro-shard of n samples on
  // the calling thread alone (several threads may call them at once; inside an OpenMP parallel region
  // oneDNN runs sequentially), with primitives made for n samples and one thread, so that a
  // micro-shard's outputs and summed gradients are the same bits whichever thread, batch or worker
  // computes it. prepare_shards, outside any parallel region, makes them (once) for micro-shards of
  // `size` and of `last` samples (0: none) and takes `weight` for the calls that follow, until it is
  // called again: once per pass.
  void prepare_shards(const float* weight, size_t size, size_t last);
  // y for the n samples of x; n is a size prepare_shards planned.
  void forward_shard(const float* x, size_t n, const float* bias, float* y) const;
  // Writes dweight and dbias (summed over the n samples in the kernel's own fixed order) and, unless
  // it is null, dx.
  void backward_shard(const float* x, const float* dy, size_t n, float* dx, float* dweight, float* dbias) const;

  // "oneDNN jit:avx2" (forward's kernel; the backward ones are named alike), as the layer reports it.
  std::string implementation() const;

 private:
  struct Kernels;
  OneDnnConvolution(const ConvShape& shape, bool bias);
  ConvShape shape_;
  bool bias_ = true;
  std::unique_ptr<Kernels> kernels_;  // oneDNN's primitives by batch size, the micro-shard ones, the kept input
};

}  // namespace dptrain
