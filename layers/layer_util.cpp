#include "layers/layer_util.h"

#include <cmath>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

bool is_batch_of(const Tensor& t, size_t n, const Shape& per_sample) {
  if (t.rank() != per_sample.size() + 1 || t.shape()[0] != n) return false;
  for (size_t i = 0; i < per_sample.size(); ++i) {
    if (t.shape()[i + 1] != per_sample[i]) return false;
  }
  return true;
}

void expect_batch(const Layer& layer, const Tensor& t, size_t n, const Shape& per_sample, const char* what) {
  if (!is_batch_of(t, n, per_sample)) {
    throw ShapeError(std::string(layer.type()) + ": " + what + " has shape " + to_string(t.shape()) + ", expected " +
                     to_string(batch_shape(n, per_sample)));
  }
}

}  // namespace

BiasTerm read_bias(ConfigMap& options) {
  return options.get_bool("bias", true) ? BiasTerm::Enabled : BiasTerm::Disabled;
}

size_t read_positive(ConfigMap& options, const std::string& key, std::optional<size_t> fallback) {
  const size_t value = options.get_size(key, fallback);
  if (value == 0) options.fail(key, "must be at least 1");
  return value;
}

size_t window_output_size(size_t in, size_t kernel, size_t stride, size_t padding, const char* axis) {
  if (kernel > in + 2 * padding) {
    throw ShapeError("kernel " + std::to_string(kernel) + " is larger than the padded " + axis + " " +
                     std::to_string(in + 2 * padding));
  }
  return (in + 2 * padding - kernel) / stride + 1;
}

void init_he_uniform(Tensor& weight, size_t fan_in, Rng& rng) {
  const float bound = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in)));
  float* w = weight.data();
  for (size_t i = 0; i < weight.num_elements(); ++i) w[i] = (2.0f * rng.uniform() - 1.0f) * bound;
}

size_t check_forward_shapes(const Layer& layer, const Tensor& x, const Tensor& y) {
  if (x.rank() == 0) throw ShapeError(std::string(layer.type()) + ": input has no batch dimension");
  const size_t n = x.shape()[0];
  expect_batch(layer, x, n, layer.input_shape(), "input");
  expect_batch(layer, y, n, layer.output_shape(), "output");
  return n;
}

size_t check_backward_shapes(const Layer& layer, const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) {
  const size_t n = check_forward_shapes(layer, x, y);
  expect_batch(layer, dy, n, layer.output_shape(), "output gradient");
  if (dx) expect_batch(layer, *dx, n, layer.input_shape(), "input gradient");
  return n;
}

void copy_unless_shared(Backend& backend, const Tensor& from, Tensor& to) {
  if (from.num_elements() != to.num_elements()) {
    throw ShapeError("cannot copy " + to_string(from.shape()) + " into " + to_string(to.shape()));
  }
  if (from.data() != to.data() && from.num_elements() > 0) {
    backend.copy_on_device(to.data(), from.data(), from.size_bytes());
  }
}

}  // namespace dptrain
