// Finite-difference gradient check for any layer: compares backward() with central differences
// of L = sum(y * w) for a fixed random w, for the input and for every parameter.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "layers/layer.h"
#include "runtime/core/rng.h"

namespace dptrain::testing {

struct GradCheckOptions {
  double eps = 1e-2;          // finite-difference step
  double tolerance = 2e-2;    // allowed |analytic - numeric| / max(1, |analytic|, |numeric|)
  float min_abs_input = 0.0f; // push inputs away from kinks (ReLU at 0, for example)
  Mode mode = Mode::Train;
  bool check_input = true;    // false for layers whose input is not differentiable
};

// Owns a layer's parameters and gradients for tests, the way the model's flat buffers would.
struct BoundParams {
  std::vector<Tensor> params, grads, buffers;
};

inline BoundParams bind_fresh_parameters(Layer& layer, uint64_t seed) {
  BoundParams b;
  for (const auto& spec : layer.parameters()) {
    b.params.emplace_back(spec.shape);
    b.grads.emplace_back(spec.shape);
  }
  layer.bind(b.params, b.grads);
  for (const auto& spec : layer.buffers()) b.buffers.emplace_back(spec.shape);
  layer.bind_buffers(b.buffers);
  layer.init_buffers();
  Rng rng(hash_key(seed, 99));
  layer.init_parameters(rng);
  // Give biases (often zero-initialised) random values too, so their use is exercised.
  for (auto& p : b.params) {
    for (size_t i = 0; i < p.num_elements(); ++i) p.data()[i] += 0.1f * rng.normal();
  }
  return b;
}

inline void expect_gradients_match(Layer& layer, size_t batch, uint64_t seed, const GradCheckOptions& opt = {}) {
  BoundParams bound = bind_fresh_parameters(layer, seed);
  Rng rng(hash_key(seed, 7));
  Tensor x(batch_shape(batch, layer.input_shape()));
  for (size_t i = 0; i < x.num_elements(); ++i) {
    float v = rng.normal();
    if (std::fabs(v) < opt.min_abs_input) v = v < 0 ? v - opt.min_abs_input : v + opt.min_abs_input;
    x.data()[i] = v;
  }
  Tensor y(batch_shape(batch, layer.output_shape()));
  Tensor w(y.shape());
  for (size_t i = 0; i < w.num_elements(); ++i) w.data()[i] = rng.normal();
  std::vector<uint64_t> ids(batch);
  for (size_t i = 0; i < batch; ++i) ids[i] = 1000 + 3 * i;
  StepInfo step{opt.mode, seed, 1, ids.data()};

  auto objective = [&]() {
    layer.forward(x, y, step);
    double s = 0;
    for (size_t i = 0; i < y.num_elements(); ++i) s += static_cast<double>(y.data()[i]) * w.data()[i];
    return s;
  };

  objective();
  Tensor dx(x.shape());
  layer.backward(x, y, w, opt.check_input ? &dx : nullptr, step);
  std::vector<Tensor> analytic;
  for (auto& g : bound.grads) {
    Tensor copy(g.shape());
    std::copy(g.data(), g.data() + g.num_elements(), copy.data());
    analytic.push_back(copy);
  }

  auto check = [&](Tensor& target, const Tensor& grad, const char* what) {
    // Every element for small tensors, a fixed random sample of 60 for large ones.
    const size_t n = target.num_elements();
    const size_t checks = std::min<size_t>(n, 60);
    Rng pick(hash_key(seed, 13, n));
    for (size_t c = 0; c < checks; ++c) {
      const size_t i = n <= 60 ? c : pick.below(n);
      const float saved = target.data()[i];
      target.data()[i] = saved + static_cast<float>(opt.eps);
      const double plus = objective();
      target.data()[i] = saved - static_cast<float>(opt.eps);
      const double minus = objective();
      target.data()[i] = saved;
      const double numeric = (plus - minus) / (2 * opt.eps);
      const double a = grad.data()[i];
      const double scale = std::max({1.0, std::fabs(a), std::fabs(numeric)});
      EXPECT_LE(std::fabs(a - numeric) / scale, opt.tolerance)
          << layer.type() << " " << what << "[" << i << "]: analytic " << a << " numeric " << numeric;
    }
  };

  if (opt.check_input) check(x, dx, "input");
  for (size_t p = 0; p < bound.params.size(); ++p) check(bound.params[p], analytic[p], layer.parameters()[p].name.c_str());
}

}  // namespace dptrain::testing
