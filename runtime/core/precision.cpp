#include "runtime/core/precision.h"

#include <cstring>

#include "runtime/core/errors.h"

namespace dptrain {

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::Float32:
      return "float32";
    case Precision::Tf32:
      return "tf32";
    case Precision::Bf16:
      return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& text) {
  for (Precision p : {Precision::Float32, Precision::Tf32, Precision::Bf16}) {
    if (text == to_string(p)) return p;
  }
  throw UsageError("unknown precision '" + text + "' (known: float32, tf32, bf16)");
}

uint16_t float_to_bf16_bits(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(bits >> 16);
}

float bf16_bits_to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float value = 0;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

}  // namespace dptrain
