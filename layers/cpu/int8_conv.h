// Int8 convolution on the CPU, for models quantized after training (dptrain quantize): weights
// rounded per output channel to [-127, 127], the input rounded to [0, levels] with one scale taken
// from its calibrated range, the products summed in int32 and the sums scaled back to float32.
// Through oneDNN where the build has it (its int8 kernels: AVX-512 VNNI, AVX2, ...), else through a
// portable reference that does the same integer arithmetic in plain loops.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "layers/cpu/conv_shape.h"
#include "layers/layer.h"
#include "runtime/core/int8.h"

namespace dptrain {

// Which arithmetic an Int8Convolution uses: oneDNN where built with it, or the portable reference.
enum class Int8Engine { Best, Reference };

// Steps an unsigned int8 input takes in [0, range]: 255 where the CPU multiplies int8 with VNNI (or
// the reference does), 127 on oneDNN's other x86 kernels, whose pairwise u8 x s8 products are summed
// in int16 first and would saturate with 8-bit inputs.
int int8_input_levels(Int8Engine engine = Int8Engine::Best);

// Whether Int8Engine::Best is oneDNN: the build has it.
bool int8_has_onednn();

// What does the int8 arithmetic of Int8Engine::Best, as dptrain quantize reports it, e.g. "oneDNN
// 2.6.3, avx2 kernels (no VNNI: inputs in 127 steps)".
std::string int8_arithmetic();

class Int8Convolution {
 public:
  // `weight` (out_channels, C / groups, kernel, kernel), host float32, is rounded with
  // `weight_scales` (out_channels, each > 0) once, here; inputs in [0, input_range] (> 0) are rounded
  // to `levels` steps (0: int8_input_levels(engine)).
  Int8Convolution(const ConvShape& shape, const float* weight, std::vector<float> weight_scales,
                  float input_range, Int8Engine engine = Int8Engine::Best, int levels = 0);
  ~Int8Convolution();
  Int8Convolution(const Int8Convolution&) = delete;
  Int8Convolution& operator=(const Int8Convolution&) = delete;

  // y (n, out_channels, Ho, Wo) = the int8 convolution of x (n, C, H, W) rounded to the input
  // steps (negative values to 0, values beyond the range to its end), plus `bias` (out_channels; may
  // be null). Host memory; threads as OpenMP allows.
  void forward(const float* x, size_t n, const float* bias, float* y);

  // The kernel that computes it, e.g. "oneDNN jit_int8:avx2" or "reference".
  std::string implementation() const;

 private:
  struct Kernels;
  ConvShape shape_;
  std::vector<signed char> weight_;  // rounded, (out_channels, C / groups, kernel, kernel)
  std::vector<float> output_scales_;  // per output channel: input step * weight scale
  float input_step_ = 1;              // input_range / levels
  int levels_ = 255;
  std::vector<unsigned char> input_;  // the rounded input of the last call (n, C, H, W)
  std::vector<float> scaled_bias_;    // oneDNN: the bias in units of the int32 sums
  std::unique_ptr<Kernels> kernels_;  // oneDNN's primitives by batch size; null for the reference
};

// Forward of a quantized layer (Layer::use_int8) through `conv`; a training step is refused.
void int8_layer_forward(Int8Convolution& conv, const Layer& layer, const Tensor& x, Tensor& y, const StepInfo& step,
                        const float* bias);

}  // namespace dptrain
