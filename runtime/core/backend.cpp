#include "runtime/core/backend.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "runtime/core/errors.h"

namespace dptrain {

void Backend::clip_to_norm(float* x, const std::vector<ElementSpan>& spans, double max_norm, double* norm) {
  double sum = 0.0;
  for (const ElementSpan& span : spans) sum += sum_squares(x + span.begin, span.end - span.begin);
  const double value = std::sqrt(sum);
  copy_to_device(norm, &value, sizeof(value));
  // Gradients within the maximum (and a NaN norm) stay as they are.
  const double coefficient = max_norm / (value + 1e-6);
  if (!(coefficient < 1.0)) return;
  for (const ElementSpan& span : spans) scale(x + span.begin, span.end - span.begin, static_cast<float>(coefficient));
}

namespace {

// Element i of a host tensor of float32 or bf16, as a float.
float load(const Tensor& t, size_t i) {
  if (t.dtype() == DType::Float32) return static_cast<const float*>(t.raw())[i];
  return bf16_bits_to_float(static_cast<const uint16_t*>(t.raw())[i]);
}

// Sets element i of a host tensor of float32 or bf16 to `value` (rounded for bf16).
void store(Tensor& t, size_t i, float value) {
  if (t.dtype() == DType::Float32) {
    static_cast<float*>(t.raw())[i] = value;
  } else {
    static_cast<uint16_t*>(t.raw())[i] = float_to_bf16_bits(value);
  }
}

}  // namespace

void Backend::add(const float* a, const float* b, float* y, size_t n) {
  if (y == b) std::swap(a, b);
  if (y != a) copy_on_device(y, a, n * sizeof(float));
  axpy(1.0f, b, y, n);
}

void Backend::convert(const Tensor& from, Tensor& to, Accumulate mode) {
  if (from.num_elements() != to.num_elements()) {
    throw ShapeError("cannot convert " + to_string(from.shape()) + " into " + to_string(to.shape()));
  }
  if (from.device() != DeviceKind::CPU || to.device() != DeviceKind::CPU) {
    throw UsageError(std::string("the ") + name() + " backend converts host tensors only");
  }
  const size_t n = from.num_elements();
  for (size_t i = 0; i < n; ++i) store(to, i, mode == Accumulate::Add ? load(to, i) + load(from, i) : load(from, i));
}

}  // namespace dptrain
