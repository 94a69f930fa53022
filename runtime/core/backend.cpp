#include "runtime/core/backend.h"

#include <cmath>

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

}  // namespace dptrain
