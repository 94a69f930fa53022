// CpuConvolution: which kernels the CPU's conv2d layers train with (`cpu_convolution` in the run config).
#pragma once

#include <string>

namespace dptrain {

enum class CpuConvolution {
  // oneDNN's direct (JIT) kernels where the build has oneDNN and the layer has enough input
  // channels per group for them to win; im2col + BLAS for the others (the default).
  Auto,
  OneDnn,  // oneDNN's direct kernels for every conv2d oneDNN has them for; a UsageError without oneDNN
  Im2col,  // im2col + BLAS everywhere: the reference the tests compare oneDNN with
};

// "auto", "onednn" or "im2col", as the config spells it.
inline const char* to_string(CpuConvolution choice) {
  switch (choice) {
    case CpuConvolution::OneDnn: return "onednn";
    case CpuConvolution::Im2col: return "im2col";
    default: return "auto";
  }
}

}  // namespace dptrain
