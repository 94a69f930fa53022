// Precision: the arithmetic that convolutions and dense layers compute in.
#pragma once

#include <cstdint>
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

// The bits of the bf16 nearest to `value` (ties to even; NaN stays NaN), and a bf16's value (exact),
// on the host: what the GPU's __float2bfloat16_rn and __bfloat162float compute.
uint16_t float_to_bf16_bits(float value);
float bf16_bits_to_float(uint16_t bits);

// The precision named `text` (one of to_string's spellings); UsageError listing them otherwise.
Precision parse_precision(const std::string& text);

}  // namespace dptrain
