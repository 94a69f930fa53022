#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "layers/registry.h"
#include "layers/relu.h"
#include "runtime/core/backend_registry.h"
#include "runtime/core/errors.h"
#include "tests/layers/layer_test_util.h"
#include "tests/runtime/core/host_backend.h"
#include "tests/test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// The message of the ConfigError that `f` throws (fails the test if it throws none, or another).
template <typename F>
std::string config_error(F&& f) {
  return test_util::error_of<ConfigError>(std::forward<F>(f));
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(LayerRegistry, BuildsEveryLayerFromYaml) {
  struct Case {
    std::string yaml;
    Shape in, out;
    size_t params;
  };
  const std::vector<Case> cases{
      {"{type: conv2d, out_channels: 4, kernel: 3}", {1, 28, 28}, {4, 26, 26}, 2},
      {"{type: conv2d, out_channels: 8, kernel: 3, stride: 2, padding: 1, bias: false}", {3, 9, 7}, {8, 5, 4}, 1},
      {"{type: dense, units: 10}", {64, 7, 7}, {10}, 2},
      {"{type: max_pool2d, kernel: 2}", {32, 28, 28}, {32, 14, 14}, 0},
      {"{type: avg_pool2d, kernel: 3, stride: 1, padding: 1}", {2, 5, 6}, {2, 5, 6}, 0},
      {"{type: relu}", {3, 4}, {3, 4}, 0},
      {"{type: flatten}", {3, 4, 5}, {60}, 0},
      {"{type: dropout, rate: 0.25}", {128}, {128}, 0},
      {"{type: softmax_cross_entropy}", {10}, {10}, 0},
  };
  for (const auto& c : cases) {
    auto layer = make_layer(c.yaml, c.in);
    ASSERT_NE(layer, nullptr) << c.yaml;
    EXPECT_EQ(c.yaml.find(std::string("type: ") + layer->type()), 1u) << c.yaml;
    EXPECT_EQ(layer->input_shape(), c.in) << c.yaml;
    EXPECT_EQ(layer->output_shape(), c.out) << c.yaml;
    EXPECT_EQ(layer->parameters().size(), c.params) << c.yaml;
  }
}

const std::vector<std::string> kEveryLayer{
    "add",        "avg_pool2d", "batchnorm2d", "concat",  "conv2d", "dense",
    "dropout",    "flatten",    "global_avg_pool2d", "leaky_relu", "max_pool2d", "relu",
    "sigmoid",    "silu",       "softmax_cross_entropy", "tanh"};

TEST(LayerRegistry, KnowsEveryCpuLayer) { EXPECT_EQ(LayerRegistry::builtin().types("cpu"), kEveryLayer); }

TEST(LayerRegistry, EveryBackendOfTheBuildKnowsEveryLayer) {
  for (const std::string& backend : built_backends()) {
    EXPECT_EQ(LayerRegistry::builtin().types(backend), kEveryLayer) << backend;
  }
}

TEST(LayerRegistry, UnknownTypeListsKnownTypes) {
  const std::string msg = config_error([] { make_layer("{type: conv3d, kernel: 3}", {1, 4, 4}); });
  EXPECT_TRUE(contains(msg, "unknown layer type 'conv3d'")) << msg;
  EXPECT_TRUE(contains(msg,
                       "known types: add, avg_pool2d, batchnorm2d, concat, conv2d, dense, dropout, flatten, "
                       "global_avg_pool2d, leaky_relu, max_pool2d, relu, sigmoid, silu, softmax_cross_entropy, tanh"))
      << msg;
}

TEST(LayerRegistry, UnknownOptionNamesTheKey) {
  const std::string msg = config_error([] {
    make_layer("{type: conv2d, out_channels: 4, kernel: 3, padding_mode: reflect}", {1, 8, 8});
  });
  EXPECT_TRUE(contains(msg, "'padding_mode'")) << msg;
  EXPECT_TRUE(contains(msg, "unknown key")) << msg;
  const std::string typo = config_error([] { make_layer("{type: dense, unit: 4}", {8}); });
  EXPECT_TRUE(contains(typo, "'units'")) << typo;  // the required key is reported missing first
  const std::string relu = config_error([] { make_layer("{type: relu, rate: 0.5}", {8}); });
  EXPECT_TRUE(contains(relu, "'rate'")) << relu;
}

TEST(LayerRegistry, BadValuesNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{type: conv2d, out_channels: 4, kernel: 0}", "'kernel'"},
      {"{type: conv2d, out_channels: 0, kernel: 3}", "'out_channels'"},
      {"{type: conv2d, out_channels: 4, kernel: 3, stride: 0}", "'stride'"},
      {"{type: conv2d, out_channels: 4, kernel: 3, padding: -1}", "'padding'"},
      {"{type: conv2d, out_channels: 4, kernel: 3, bias: maybe}", "'bias'"},
      {"{type: dense, units: 0}", "'units'"},
      {"{type: dropout, rate: 1.0}", "'rate'"},
      {"{type: max_pool2d, kernel: 2, padding: 2}", "'padding'"},
  };
  for (const auto& [yaml, key] : cases) {
    const std::string& text = yaml;  // a lambda may not capture a structured binding before C++20 (clang)
    const std::string msg = config_error([&] { make_layer(text, {2, 8, 8}); });
    EXPECT_TRUE(contains(msg, key)) << yaml << " -> " << msg;
  }
}

TEST(LayerRegistry, InputShapeErrorsBecomeConfigErrors) {
  const std::string rank = config_error([] { make_layer("{type: conv2d, out_channels: 4, kernel: 3}", {16}); });
  EXPECT_TRUE(contains(rank, "cannot take input of shape (16)")) << rank;
  const std::string big = config_error([] { make_layer("{type: conv2d, out_channels: 4, kernel: 7}", {1, 5, 5}); });
  EXPECT_TRUE(contains(big, "larger than the padded")) << big;
}

// A relu whose forward and backward are never called: what a registry test builds.
class UnusedRelu final : public ReluLayer {
 public:
  using ReluLayer::ReluLayer;
  void forward(const Tensor&, Tensor&, const StepInfo&) override {}
  void backward(const Tensor&, const Tensor&, const Tensor&, Tensor*, const StepInfo&) override {}
};

std::unique_ptr<Layer> make_unused_relu(ConfigMap&, const Shape& input_shape, Backend&) {
  return std::make_unique<UnusedRelu>(input_shape);
}

TEST(LayerRegistry, TypeWithoutAnImplementationForTheBackendSaysSo) {
  // A registry with a cpu relu only, asked for the relu of another backend.
  LayerRegistry registry;
  registry.add("relu", "cpu", make_unused_relu);
  HostBackend other;
  ConfigMap options = ConfigMap::parse("{type: relu}");
  const std::string msg = config_error([&] { registry.create(options, {4}, other); });
  EXPECT_TRUE(contains(msg, "layer type 'relu' has no host-test implementation")) << msg;
  ConfigMap unknown = ConfigMap::parse("{type: gelu}");
  const std::string listed = config_error([&] { registry.create(unknown, {4}, cpu_backend()); });
  EXPECT_TRUE(contains(listed, "unknown layer type 'gelu' (known types: relu)")) << listed;
}

TEST(LayerRegistry, ALayerForAnyBackendServesEveryBackend) {
  LayerRegistry registry;
  registry.add("relu", kAnyBackend, make_unused_relu);
  HostBackend other;
  for (Backend* backend : std::vector<Backend*>{&cpu_backend(), &other}) {
    ConfigMap options = ConfigMap::parse("{type: relu}");
    EXPECT_NE(registry.create(options, {4}, *backend), nullptr) << backend->name();
    EXPECT_EQ(registry.types(backend->name()), std::vector<std::string>{"relu"}) << backend->name();
  }
}

}  // namespace
}  // namespace dptrain::testing
