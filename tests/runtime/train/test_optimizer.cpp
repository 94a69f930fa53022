#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/tensor.h"
#include "runtime/train/optimizer.h"
#include "tests/runtime/core/host_backend.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

// The backend of the optimizers built below (the CPU backend holds no state).
CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

// Builds an optimizer from the body of an `optimizer:` mapping, checking it as the trainer does,
// for a model whose one parameter fills the flat buffers.
std::unique_ptr<Optimizer> build(const std::string& body, size_t num_parameters, Backend& backend = cpu()) {
  ConfigMap root = ConfigMap::parse("optimizer:\n" + body, "run.yaml");
  ConfigMap config = root.get_map("optimizer");
  const std::vector<ParamEntry> layout = {{0, "0.dense.weight", "dense", "weight", {num_parameters}, 0}};
  auto optimizer = make_optimizer(config, layout, num_parameters, backend);
  config.finish();
  return optimizer;
}

// The message of the ConfigError that building `body` throws ("" if none).
std::string config_error(const std::string& body) {
  try {
    build(body, 4);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

Tensor tensor_of(const std::vector<double>& values) {
  Tensor t({values.size()});
  for (size_t i = 0; i < values.size(); ++i) t.data()[i] = static_cast<float>(values[i]);
  return t;
}

// A different, deterministic gradient for every step and element.
std::vector<double> gradient(size_t n, int step) {
  std::vector<double> g(n);
  for (size_t i = 0; i < n; ++i) g[i] = std::sin(1.3 * static_cast<double>(i) + 0.7 * step) * (1.0 + 0.5 * step);
  return g;
}

// torch.optim.SGD (dampening 0), one element at a time, in double.
struct SgdReference {
  double lr, momentum, weight_decay;
  bool nesterov;
  std::vector<double> buf;
  bool first = true;
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    buf.resize(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] + weight_decay * p[i];
      if (momentum != 0) {
        buf[i] = first ? g : momentum * buf[i] + g;
        g = nesterov ? g + momentum * buf[i] : buf[i];
      }
      p[i] -= lr * g;
    }
    first = false;
  }
};

// torch.optim.Adam / AdamW (amsgrad off), one element at a time, in double.
struct AdamReference {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    m.resize(p.size(), 0.0);
    v.resize(p.size(), 0.0);
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) {
        p[i] *= 1 - lr * weight_decay;
      } else {
        g += weight_decay * p[i];
      }
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      const double m_hat = m[i] / (1 - std::pow(beta1, t));
      const double v_hat = v[i] / (1 - std::pow(beta2, t));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

void expect_near(const Tensor& actual, const std::vector<double>& expected, double tolerance, int step) {
  ASSERT_EQ(actual.num_elements(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(actual.data()[i], expected[i], tolerance * (1 + std::abs(expected[i])))
        << "element " << i << " after step " << step;
  }
}

// Runs `steps` updates of the optimizer and the reference side by side from the same start.
template <typename Reference>
void compare(const std::string& body, Reference reference, size_t n, int steps, double tolerance) {
  auto optimizer = build(body, n);
  std::vector<double> expected(n);
  for (size_t i = 0; i < n; ++i) expected[i] = 0.5 - 0.25 * static_cast<double>(i);
  Tensor params = tensor_of(expected);
  for (int s = 0; s < steps; ++s) {
    const std::vector<double> g = gradient(n, s);
    const float lr = static_cast<float>(reference.lr);
    optimizer->step(params, tensor_of(g), lr);
    reference.step(expected, g);
    expect_near(params, expected, tolerance, s);
  }
  EXPECT_EQ(optimizer->steps(), static_cast<uint64_t>(steps));
}

TEST(Sgd, PlainStepsAlongTheGradient) {
  // Hand-computed: p = 1, g = 2, lr 0.1 -> 0.8, 0.6, 0.4.
  auto sgd = build("  type: sgd\n  lr: 0.1\n", 1);
  Tensor p = tensor_of({1.0});
  const double expected[] = {0.8, 0.6, 0.4};
  for (double e : expected) {
    sgd->step(p, tensor_of({2.0}), 0.1f);
    EXPECT_NEAR(p.data()[0], e, 1e-6);
  }
  EXPECT_TRUE(sgd->state().empty());
  EXPECT_STREQ(sgd->name(), "sgd");
  EXPECT_DOUBLE_EQ(sgd->base_lr(), 0.1);
  compare("  type: sgd\n  lr: 0.1\n", SgdReference{0.1, 0, 0, false, {}}, 7, 3, 1e-6);
}

TEST(Sgd, MomentumMatchesTorch) {
  // Hand-computed: p = 1, g = 1, lr 0.1, momentum 0.9: buf 1, 1.9, 2.71 -> p 0.9, 0.71, 0.439.
  auto sgd = build("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n", 1);
  Tensor p = tensor_of({1.0});
  const double expected[] = {0.9, 0.71, 0.439};
  for (double e : expected) {
    sgd->step(p, tensor_of({1.0}), 0.1f);
    EXPECT_NEAR(p.data()[0], e, 1e-6);
  }
  auto state = sgd->state();
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "momentum");
  EXPECT_NEAR(state[0].second->data()[0], 2.71, 1e-6);
  compare("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n", SgdReference{0.1, 0.9, 0, false, {}}, 7, 3, 1e-6);
}

TEST(Sgd, NesterovMatchesTorch) {
  // Hand-computed: p = 1, g = 1, lr 0.1, momentum 0.9: steps along g + 0.9 * buf = 1.9, 2.71, 3.439.
  auto sgd = build("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n", 1);
  Tensor p = tensor_of({1.0});
  const double expected[] = {0.81, 0.539, 0.1951};
  for (double e : expected) {
    sgd->step(p, tensor_of({1.0}), 0.1f);
    EXPECT_NEAR(p.data()[0], e, 1e-6);
  }
  compare("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n", SgdReference{0.1, 0.9, 0, true, {}}, 7, 3,
          1e-6);
}

TEST(Sgd, WeightDecayIsAddedToTheGradient) {
  // Hand-computed: p = 1, g = 0, lr 0.1, weight_decay 0.1: p *= 0.99 each step.
  auto sgd = build("  type: sgd\n  lr: 0.1\n  weight_decay: 0.1\n", 1);
  Tensor p = tensor_of({1.0});
  const double expected[] = {0.99, 0.9801, 0.970299};
  for (double e : expected) {
    sgd->step(p, tensor_of({0.0}), 0.1f);
    EXPECT_NEAR(p.data()[0], e, 1e-6);
  }
  compare("  type: sgd\n  lr: 0.05\n  momentum: 0.8\n  nesterov: true\n  weight_decay: 0.01\n",
          SgdReference{0.05, 0.8, 0.01, true, {}}, 9, 3, 1e-6);
  compare("  type: sgd\n  lr: 0.05\n  momentum: 0.5\n  weight_decay: 0.2\n", SgdReference{0.05, 0.5, 0.2, false, {}}, 9,
          3, 1e-6);
}

TEST(Sgd, UsesTheLearningRateItIsGiven) {
  auto sgd = build("  type: sgd\n  lr: 0.1\n", 1);
  Tensor p = tensor_of({1.0});
  sgd->step(p, tensor_of({1.0}), 0.25f);
  EXPECT_NEAR(p.data()[0], 0.75, 1e-7);
  sgd->step(p, tensor_of({1.0}), 0.0f);
  EXPECT_NEAR(p.data()[0], 0.75, 1e-7);
}

TEST(Adam, FirstStepMovesEachParameterByLr) {
  // After bias correction the first update is lr * g / |g| (up to eps).
  auto adam = build("  type: adam\n  lr: 0.1\n", 3);
  Tensor p = tensor_of({1.0, 1.0, 1.0});
  adam->step(p, tensor_of({2.0, -0.5, 1e-3}), 0.1f);
  EXPECT_NEAR(p.data()[0], 0.9, 1e-6);
  EXPECT_NEAR(p.data()[1], 1.1, 1e-6);
  EXPECT_NEAR(p.data()[2], 0.9, 1e-5);
  EXPECT_STREQ(adam->name(), "adam");
}

TEST(Adam, MatchesTorchOverSeveralSteps) {
  compare("  type: adam\n  lr: 0.01\n", AdamReference{0.01, 0.9, 0.999, 1e-8, 0, false, {}, {}}, 11, 8, 2e-5);
  compare("  type: adam\n  lr: 0.003\n  beta1: 0.8\n  beta2: 0.99\n  eps: 1.0e-6\n  weight_decay: 0.05\n",
          AdamReference{0.003, 0.8, 0.99, 1e-6, 0.05, false, {}, {}}, 11, 8, 2e-5);
}

TEST(Adam, AdamWMatchesTorchOverSeveralSteps) {
  compare("  type: adam\n  lr: 0.01\n  weight_decay: 0.1\n  decoupled_weight_decay: true\n",
          AdamReference{0.01, 0.9, 0.999, 1e-8, 0.1, true, {}, {}}, 11, 8, 2e-5);
}

TEST(Adam, DecoupledDecayShrinksParametersWithoutTouchingTheMoments) {
  // With zero gradients AdamW only multiplies by (1 - lr * wd); Adam's L2 term would move p by ~lr a step.
  auto adamw = build("  type: adam\n  lr: 0.01\n  weight_decay: 0.1\n  decoupled_weight_decay: true\n", 1);
  auto adam = build("  type: adam\n  lr: 0.01\n  weight_decay: 0.1\n", 1);
  Tensor pw = tensor_of({1.0});
  Tensor pl = tensor_of({1.0});
  for (int s = 0; s < 3; ++s) {
    adamw->step(pw, tensor_of({0.0}), 0.01f);
    adam->step(pl, tensor_of({0.0}), 0.01f);
  }
  EXPECT_NEAR(pw.data()[0], std::pow(1 - 0.01 * 0.1, 3), 1e-6);
  EXPECT_NEAR(pl.data()[0], 0.97, 1e-4);
  EXPECT_STREQ(adamw->name(), "adamw");
}

TEST(Adam, MinimisesAQuadratic) {
  // f(x) = 0.5 * sum a_i (x_i - c_i)^2, badly scaled on purpose.
  const std::vector<double> a = {100.0, 1.0, 0.01, 5.0};
  const std::vector<double> c = {1.0, -2.0, 0.5, 3.0};
  auto adam = build("  type: adam\n  lr: 0.05\n", a.size());
  Tensor x({a.size()});
  Tensor g({a.size()});
  auto loss = [&] {
    double f = 0;
    for (size_t i = 0; i < a.size(); ++i) f += 0.5 * a[i] * std::pow(x.data()[i] - c[i], 2);
    return f;
  };
  const double start = loss();
  for (int s = 0; s < 3000; ++s) {
    for (size_t i = 0; i < a.size(); ++i) g.data()[i] = static_cast<float>(a[i] * (x.data()[i] - c[i]));
    adam->step(x, g, 0.05f);
  }
  EXPECT_LT(loss(), 1e-6 * start);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(x.data()[i], c[i], 0.05) << "x" << i;
}

TEST(Adam, ResumesExactlyFromStateAndStepCount) {
  const size_t n = 5;
  const std::string body = "  type: adam\n  lr: 0.01\n";
  auto straight = build(body, n);
  auto first = build(body, n);
  Tensor p_straight = tensor_of({1, 2, 3, 4, 5});
  Tensor p_resumed = tensor_of({1, 2, 3, 4, 5});
  for (int s = 0; s < 4; ++s) straight->step(p_straight, tensor_of(gradient(n, s)), 0.01f);
  for (int s = 0; s < 2; ++s) first->step(p_resumed, tensor_of(gradient(n, s)), 0.01f);

  // A fresh optimizer given the saved state and step count continues the same trajectory.
  auto resumed = build(body, n);
  auto saved = first->state();
  auto restored = resumed->state();
  ASSERT_EQ(restored.size(), 2u);
  EXPECT_EQ(restored[0].first, "exp_avg");
  EXPECT_EQ(restored[1].first, "exp_avg_sq");
  for (size_t k = 0; k < restored.size(); ++k) {
    ASSERT_EQ(restored[k].second->num_elements(), n);
    std::copy(saved[k].second->data(), saved[k].second->data() + n, restored[k].second->data());
  }
  resumed->set_steps(first->steps());
  for (int s = 2; s < 4; ++s) resumed->step(p_resumed, tensor_of(gradient(n, s)), 0.01f);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(p_resumed.data()[i], p_straight.data()[i]) << "element " << i;
  EXPECT_EQ(resumed->steps(), 4u);
}

TEST(Optimizer, LargeBuffersTakeTheParallelPathWithTheSameResult) {
  const size_t n = 200000;
  for (const std::string body : {"  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n",
                                 "  type: adam\n  lr: 0.01\n  weight_decay: 0.1\n  decoupled_weight_decay: true\n"}) {
    auto big = build(body, n);
    auto small = build(body, 1);
    Tensor p({n});
    Tensor g({n});
    for (size_t i = 0; i < n; ++i) {
      p.data()[i] = static_cast<float>(std::cos(0.001 * static_cast<double>(i)));
      g.data()[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)));
    }
    const size_t probe[] = {0, 1, 12345, n / 2, n - 1};
    std::vector<Tensor> ps, gs;
    for (size_t i : probe) ps.push_back(tensor_of({p.data()[i]})), gs.push_back(tensor_of({g.data()[i]}));
    for (int s = 0; s < 3; ++s) big->step(p, g, 0.05f);
    for (size_t k = 0; k < ps.size(); ++k) {
      auto one = build(body, 1);
      for (int s = 0; s < 3; ++s) one->step(ps[k], gs[k], 0.05f);
      EXPECT_FLOAT_EQ(p.data()[probe[k]], ps[k].data()[0]) << body << " element " << probe[k];
    }
  }
}

TEST(Optimizer, RejectsBuffersOfTheWrongLengthAndBadLearningRates) {
  auto sgd = build("  type: sgd\n  lr: 0.1\n", 4);
  Tensor p({4});
  Tensor short_grads({3});
  EXPECT_THROW(sgd->step(p, short_grads, 0.1f), ShapeError);
  Tensor long_params({5});
  Tensor g({4});
  EXPECT_THROW(sgd->step(long_params, g, 0.1f), ShapeError);
  EXPECT_THROW(sgd->step(p, g, -0.1f), Error);
  EXPECT_THROW(sgd->step(p, g, std::nanf("")), Error);
  EXPECT_EQ(sgd->steps(), 0u);
}

TEST(Optimizer, UpdatesAndStateGoThroughTheBackend) {
  for (const char* body :
       {"  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n", "  type: adam\n  lr: 0.1\n"}) {
    testing::HostBackend device;
    auto on_device = build(body, 5, device);
    auto on_cpu = build(body, 5);
    EXPECT_EQ(on_device->device(), DeviceKind::CUDA);
    for (const auto& [name, tensor] : on_device->state()) EXPECT_EQ(tensor->backend(), &device) << name;
    Tensor params = tensor_of({1, 2, 3, 4, 5}).to(device), grads = tensor_of({5, 4, 3, 2, 1}).to(device);
    Tensor host_params = tensor_of({1, 2, 3, 4, 5});
    for (int s = 0; s < 2; ++s) {
      on_device->step(params, grads, 0.1f);
      on_cpu->step(host_params, tensor_of({5, 4, 3, 2, 1}), 0.1f);
    }
    EXPECT_EQ(device.updates, 2u) << body;
    const Tensor result = params.to_host();
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(result.data()[i], host_params.data()[i]) << body << " element " << i;
    Tensor stray({5});
    EXPECT_THROW(on_device->step(stray, grads, 0.1f), Error) << body;
  }
}

TEST(OptimizerConfig, UnknownTypeListsTheKnownOnes) {
  const std::string message = config_error("  type: rmsprop\n  lr: 0.1\n");
  EXPECT_NE(message.find("run.yaml:2: key 'optimizer.type'"), std::string::npos) << message;
  EXPECT_NE(message.find("rmsprop"), std::string::npos) << message;
  EXPECT_NE(message.find("adam, sgd"), std::string::npos) << message;
}

TEST(OptimizerConfig, LearningRateIsRequiredAndPositive) {
  std::string message = config_error("  type: sgd\n  lr: -0.1\n");
  EXPECT_NE(message.find("run.yaml:3: key 'optimizer.lr'"), std::string::npos) << message;
  EXPECT_NE(message.find("must be > 0"), std::string::npos) << message;
  message = config_error("  type: adam\n  lr: 0\n");
  EXPECT_NE(message.find("'optimizer.lr'"), std::string::npos) << message;
  message = config_error("  type: adam\n");
  EXPECT_NE(message.find("'optimizer.lr'"), std::string::npos) << message;
  EXPECT_NE(message.find("missing"), std::string::npos) << message;
  message = config_error("  lr: 0.1\n");
  EXPECT_NE(message.find("'optimizer.type'"), std::string::npos) << message;
}

TEST(OptimizerConfig, NesterovNeedsMomentum) {
  const std::string message = config_error("  type: sgd\n  lr: 0.1\n  nesterov: true\n");
  EXPECT_NE(message.find("run.yaml:4: key 'optimizer.nesterov'"), std::string::npos) << message;
  EXPECT_NE(message.find("momentum > 0"), std::string::npos) << message;
}

TEST(OptimizerConfig, WrongValueTypesAndRangesNameTheKey) {
  std::string message = config_error("  type: sgd\n  lr: 0.1\n  momentum: fast\n");
  EXPECT_NE(message.find("'optimizer.momentum'"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a number"), std::string::npos) << message;
  message = config_error("  type: sgd\n  lr: 0.1\n  momentum: 1.0\n");
  EXPECT_NE(message.find("'optimizer.momentum'"), std::string::npos) << message;
  message = config_error("  type: sgd\n  lr: [0.1]\n");
  EXPECT_NE(message.find("'optimizer.lr'"), std::string::npos) << message;
  message = config_error("  type: adam\n  lr: 0.1\n  decoupled_weight_decay: maybe\n");
  EXPECT_NE(message.find("'optimizer.decoupled_weight_decay'"), std::string::npos) << message;
  message = config_error("  type: adam\n  lr: 0.1\n  beta2: 1\n");
  EXPECT_NE(message.find("'optimizer.beta2'"), std::string::npos) << message;
  message = config_error("  type: adam\n  lr: 0.1\n  weight_decay: -1\n");
  EXPECT_NE(message.find("'optimizer.weight_decay'"), std::string::npos) << message;
  message = config_error("  type: adam\n  lr: 0.1\n  eps: 0\n");
  EXPECT_NE(message.find("'optimizer.eps'"), std::string::npos) << message;
}

TEST(OptimizerConfig, KeysOfAnotherOptimizerAreRejected) {
  const std::string message = config_error("  type: sgd\n  lr: 0.1\n  beta1: 0.9\n");
  EXPECT_NE(message.find("'optimizer.beta1'"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key"), std::string::npos) << message;
}

TEST(OptimizerConfig, DescribeNamesTheSettings) {
  EXPECT_EQ(build("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n  weight_decay: 0.0005\n", 1)->describe(),
            "sgd (lr 0.1, momentum 0.9, nesterov, weight_decay 0.0005)");
  EXPECT_EQ(build("  type: adam\n  lr: 0.001\n  weight_decay: 0.01\n  decoupled_weight_decay: true\n", 1)->describe(),
            "adamw (lr 0.001, betas 0.9/0.999, eps 1e-08, decoupled weight_decay 0.01)");
}

}  // namespace
}  // namespace dptrain
