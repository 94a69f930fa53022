#include "runtime/core/precision.h"

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

}  // namespace dptrain
