// The `init` option of conv2d and dense: each scheme's distribution with PyTorch's fan sizes, the
// pytorch default, determinism from the layer's key, and the error for an unknown scheme.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "layers/layer_util.h"
#include "runtime/core/errors.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// Moments of a tensor's values.
struct Moments {
  double mean = 0, variance = 0, largest = 0;
  bool all_zero = true;
};

Moments moments_of(const Tensor& t) {
  Moments m;
  const auto n = static_cast<double>(t.num_elements());
  for (size_t i = 0; i < t.num_elements(); ++i) m.mean += t.data()[i];
  m.mean /= n;
  for (size_t i = 0; i < t.num_elements(); ++i) {
    const double v = t.data()[i];
    m.variance += (v - m.mean) * (v - m.mean);
    m.largest = std::max(m.largest, std::fabs(v));
    m.all_zero = m.all_zero && v == 0.0;
  }
  m.variance /= n;
  return m;
}

// A layer built from `yaml`, its parameters bound (biases first set to 7) and initialised from key `seed`.
struct Initialised {
  std::unique_ptr<Layer> layer;
  BoundParams bound;
};

Initialised initialise(const std::string& yaml, const Shape& input_shape, uint64_t seed) {
  Initialised out{make_layer(yaml, input_shape), {}};
  for (const auto& spec : out.layer->parameters()) {
    out.bound.params.emplace_back(spec.shape);
    out.bound.grads.emplace_back(spec.shape);
  }
  if (out.bound.params.size() > 1) out.bound.params[1].fill(7.0f);
  out.layer->bind(out.bound.params, out.bound.grads);
  Rng rng(seed);
  out.layer->init_parameters(rng);
  return out;
}

// A scheme and what it must give for fans (in, out): the weight distribution and whether the bias is zero.
struct SchemeCase {
  const char* name;
  bool uniform;
  double (*variance)(double fan_in, double fan_out);
  bool zero_bias;
};

const SchemeCase kSchemes[] = {
    {"pytorch", true, [](double in, double) { return 1.0 / (3.0 * in); }, false},
    {"he_uniform", true, [](double in, double) { return 2.0 / in; }, true},
    {"he_normal", false, [](double in, double) { return 2.0 / in; }, true},
    {"xavier_uniform", true, [](double in, double out) { return 2.0 / (in + out); }, true},
    {"xavier_normal", false, [](double in, double out) { return 2.0 / (in + out); }, true},
};

// Checks the parameters of `yaml` + init: NAME on `input_shape` against each scheme with fans (in, out).
void expect_schemes(const std::string& yaml, const Shape& input_shape, double fan_in, double fan_out) {
  for (const SchemeCase& s : kSchemes) {
    SCOPED_TRACE(s.name);
    const std::string with_init = yaml.substr(0, yaml.size() - 1) + ", init: " + s.name + "}";
    Initialised init = initialise(with_init, input_shape, 17);
    const Moments w = moments_of(init.bound.params[0]);
    const double variance = s.variance(fan_in, fan_out);
    EXPECT_NEAR(w.variance, variance, 0.05 * variance);
    EXPECT_NEAR(w.mean, 0.0, 0.05 * std::sqrt(variance));
    if (s.uniform) {
      // U(-b, b) has variance b^2 / 3.
      const double bound = std::sqrt(3.0 * variance);
      EXPECT_LE(w.largest, bound);
      EXPECT_GT(w.largest, 0.99 * bound);
    } else {
      EXPECT_GT(w.largest, 3.0 * std::sqrt(variance));  // a normal's tails, which no uniform of this variance has
    }
    const Moments b = moments_of(init.bound.params[1]);
    if (s.zero_bias) {
      EXPECT_TRUE(b.all_zero);
    } else {
      EXPECT_FALSE(b.all_zero);
      EXPECT_LE(b.largest, 1.0 / std::sqrt(fan_in));  // PyTorch: bias U(+-1/sqrt(fan_in))
    }
  }
}

TEST(Init, Conv2dSchemesUseGroupedFanIn) {
  // weight (64, 32 / 2, 3, 3): fan_in = 16 * 9, fan_out = 64 * 9.
  expect_schemes("{type: conv2d, out_channels: 64, kernel: 3, groups: 2}", {32, 6, 6}, 144, 576);
}

TEST(Init, DenseSchemes) {
  // weight (300, 200): fan_in 200, fan_out 300; bias of 300 entries.
  expect_schemes("{type: dense, units: 300}", {200}, 200, 300);
}

TEST(Init, PytorchIsTheDefault) {
  for (const auto& [yaml, shape] : std::vector<std::pair<std::string, Shape>>{
           {"{type: conv2d, out_channels: 8, kernel: 3}", {4, 5, 5}}, {"{type: dense, units: 10}", {12}}}) {
    SCOPED_TRACE(yaml);
    Initialised by_default = initialise(yaml, shape, 3);
    Initialised explicit_pytorch = initialise(yaml.substr(0, yaml.size() - 1) + ", init: pytorch}", shape, 3);
    for (size_t p = 0; p < 2; ++p) {
      const Tensor& a = by_default.bound.params[p];
      const Tensor& b = explicit_pytorch.bound.params[p];
      ASSERT_TRUE(std::equal(a.data(), a.data() + a.num_elements(), b.data())) << p;
    }
  }
}

TEST(Init, DrawsFromTheGivenKeyOnly) {
  for (const SchemeCase& s : kSchemes) {
    SCOPED_TRACE(s.name);
    const std::string yaml = std::string("{type: conv2d, out_channels: 4, kernel: 3, init: ") + s.name + "}";
    Initialised a = initialise(yaml, {2, 5, 5}, 11), b = initialise(yaml, {2, 5, 5}, 11);
    Initialised c = initialise(yaml, {2, 5, 5}, 12);
    const Tensor& wa = a.bound.params[0];
    EXPECT_TRUE(std::equal(wa.data(), wa.data() + wa.num_elements(), b.bound.params[0].data()));
    EXPECT_FALSE(std::equal(wa.data(), wa.data() + wa.num_elements(), c.bound.params[0].data()));
  }
}

TEST(Init, UnknownSchemeNamesTheKeyAndTheChoices) {
  try {
    make_layer("{type: dense, units: 3, init: kaiming}", {4});
    FAIL() << "init: kaiming was accepted";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'init'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("xavier_normal"), std::string::npos) << msg;
  }
}

TEST(Init, SchemeNamesRoundTrip) {
  for (const SchemeCase& s : kSchemes) {
    ConfigMap options = ConfigMap::parse(std::string("{init: ") + s.name + "}");
    EXPECT_STREQ(to_string(read_init(options)), s.name);
  }
}

}  // namespace
}  // namespace dptrain::testing
