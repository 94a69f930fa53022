#include "layers/layer_util.h"

#include <cmath>
#include <string>
#include <vector>

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
  return options.get_count(key, fallback, CountRange{1, kMaxLayerSize, ""});
}

size_t window_output_size(size_t in, size_t kernel, size_t stride, size_t padding, const char* axis) {
  if (kernel > in + 2 * padding) {
    throw ShapeError("kernel " + std::to_string(kernel) + " is larger than the padded " + axis + " " +
                     std::to_string(in + 2 * padding));
  }
  return (in + 2 * padding - kernel) / stride + 1;
}

InitScheme read_init(ConfigMap& options) {
  static const std::vector<std::string> names = {"pytorch", "he_uniform", "he_normal", "xavier_uniform",
                                                 "xavier_normal"};
  const std::string name = options.get_choice("init", names, std::string("pytorch"));
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<InitScheme>(i);
  }
  options.fail("init", "unknown initialisation '" + name + "'");
}

const char* to_string(InitScheme scheme) {
  switch (scheme) {
    case InitScheme::PyTorch:
      return "pytorch";
    case InitScheme::HeUniform:
      return "he_uniform";
    case InitScheme::HeNormal:
      return "he_normal";
    case InitScheme::XavierUniform:
      return "xavier_uniform";
    case InitScheme::XavierNormal:
      return "xavier_normal";
  }
  return "unknown";
}

void init_weight_and_bias(InitScheme scheme, const Fans& fans, Tensor& weight, Tensor* bias, Rng& rng) {
  if (fans.in == 0 || fans.out == 0) throw ShapeError("cannot initialise a weight with no inputs or outputs");
  const double fan_in = static_cast<double>(fans.in), fan_sum = static_cast<double>(fans.in + fans.out);
  auto fill_uniform = [&rng](Tensor& t, double bound) {
    const auto b = static_cast<float>(bound);
    float* p = t.data();
    for (size_t i = 0; i < t.num_elements(); ++i) p[i] = (2.0f * rng.uniform() - 1.0f) * b;
  };
  auto fill_normal = [&rng](Tensor& t, double stddev) {
    const auto s = static_cast<float>(stddev);
    float* p = t.data();
    for (size_t i = 0; i < t.num_elements(); ++i) p[i] = rng.normal() * s;
  };
  switch (scheme) {
    case InitScheme::PyTorch:
      // kaiming_uniform_(a = sqrt(5)): gain sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in).
      fill_uniform(weight, 1.0 / std::sqrt(fan_in));
      break;
    case InitScheme::HeUniform:
      fill_uniform(weight, std::sqrt(6.0 / fan_in));
      break;
    case InitScheme::HeNormal:
      fill_normal(weight, std::sqrt(2.0 / fan_in));
      break;
    case InitScheme::XavierUniform:
      fill_uniform(weight, std::sqrt(6.0 / fan_sum));
      break;
    case InitScheme::XavierNormal:
      fill_normal(weight, std::sqrt(2.0 / fan_sum));
      break;
  }
  if (!bias) return;
  if (scheme == InitScheme::PyTorch) {
    fill_uniform(*bias, 1.0 / std::sqrt(fan_in));
  } else {
    bias->zero();
  }
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
  if (from.dtype() != to.dtype()) {
    throw UsageError(std::string("cannot copy ") + to_string(from.dtype()) + " into " + to_string(to.dtype()));
  }
  if (from.raw() != to.raw() && from.num_elements() > 0) {
    backend.copy_on_device(to.raw(), from.raw(), from.size_bytes());
  }
}

}  // namespace dptrain
