// Graph models: names and inputs, blocks, gradients through branches and merges against finite
// differences, frozen parameters, and the config errors a graph can have.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/train/model.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

std::unique_ptr<Model> build(const std::string& model_yaml, const Shape& input, const std::vector<std::string>& frozen = {}) {
  ConfigMap root = ConfigMap::parse("model:\n" + model_yaml, "graph.yaml");
  std::vector<ConfigMap> layers = root.get_map_list("model");
  return std::make_unique<Model>(layers, input, cpu(), 7, frozen);
}

std::string graph_error(const std::string& model_yaml, const Shape& input = {1, 6, 6}) {
  return test_util::error_of<ConfigError>([&] { build(model_yaml, input); });
}

// A small graph with every kind of edge: a residual block with a projection, an output read by three
// layers, a concat of two branches, batch norm.
const char* const kGraph = R"(  - {type: conv2d, name: stem, out_channels: 4, kernel: 3, padding: 1, bias: false}
  - {type: batchnorm2d, name: bn}
  - {type: relu}
  - {type: basic_block, name: block, out_channels: 6, stride: 2}
  - {type: conv2d, name: left, out_channels: 3, kernel: 1, inputs: [block.relu]}
  - {type: conv2d, name: right, out_channels: 2, kernel: 3, padding: 1, inputs: [block.relu]}
  - {type: concat, name: join, inputs: [left, right]}
  - {type: tanh}
  - {type: global_avg_pool2d}
  - {type: flatten}
  - {type: dense, name: fc, units: 3}
  - {type: softmax_cross_entropy}
)";

TEST(ModelGraph, NamesLayersAndParametersAsConfigured) {
  auto model = build(kGraph, {1, 6, 6});
  EXPECT_EQ(model->layer_name(0), "stem");
  EXPECT_EQ(model->layer_name(2), "2.relu");  // unnamed: "<index>.<type>"
  std::vector<std::string> names;
  for (const ParamEntry& e : model->parameter_entries()) names.push_back(e.name);
  for (const char* expected : {"stem.weight", "bn.weight", "bn.bias", "block.conv1.weight", "block.bn2.bias",
                               "block.downsample.0.weight", "block.downsample.1.weight", "join" /* none */}) {
    const bool has = std::find(names.begin(), names.end(), expected) != names.end();
    EXPECT_EQ(has, std::string(expected) != "join") << expected;
  }
  std::vector<std::string> buffers;
  for (const ParamEntry& e : model->buffer_entries()) buffers.push_back(e.name);
  EXPECT_EQ(buffers.front(), "bn.running_mean");
  EXPECT_EQ(buffers[1], "bn.running_var");
  EXPECT_EQ(model->num_classes(), 3u);
  const std::string summary = model->summary();
  EXPECT_NE(summary.find("<- left, right"), std::string::npos) << summary;
}

// The loss of the model on a fixed batch, in training mode (batch statistics).
double loss_of(Model& model, const Tensor& x, const std::vector<int32_t>& labels) {
  std::vector<uint64_t> ids(labels.size());
  const StepInfo info{Mode::Train, 1, 0, ids.data()};
  return model.step(x, labels.data(), info, 1.0f).loss_sum;
}

TEST(ModelGraph, GradientsThroughBranchesAndMergesMatchFiniteDifferences) {
  auto model = build(kGraph, {1, 6, 6});
  const size_t n = 5;
  Tensor x({n, 1, 6, 6});
  Rng rng(3);
  for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = rng.normal();
  const std::vector<int32_t> labels = {0, 2, 1, 1, 0};
  std::vector<uint64_t> ids(n);
  const StepInfo info{Mode::Train, 1, 0, ids.data()};
  std::vector<std::pair<size_t, size_t>> ready;
  model->step(x, labels.data(), info, 1.0f, [&](size_t b, size_t e) { ready.emplace_back(b, e); });
  const Tensor analytic = model->gradients().to_host();
  // Ranges arrive last layer first and cover the trained parameters.
  ASSERT_FALSE(ready.empty());
  for (size_t i = 1; i < ready.size(); ++i) EXPECT_LE(ready[i].second, ready[i - 1].first);
  EXPECT_EQ(ready.back().first, model->trained_range().first);

  float* p = model->parameters().data();
  const double eps = 1e-2;
  for (const ParamEntry& e : model->parameter_entries()) {
    const size_t count = num_elements(e.shape);
    for (size_t k = 0; k < std::min<size_t>(count, 4); ++k) {
      const size_t at = e.offset + (k * 7919) % count;
      const float saved = p[at];
      p[at] = saved + static_cast<float>(eps);
      const double plus = loss_of(*model, x, labels);
      p[at] = saved - static_cast<float>(eps);
      const double minus = loss_of(*model, x, labels);
      p[at] = saved;
      const double numeric = (plus - minus) / (2 * eps), a = analytic.data()[at];
      EXPECT_LE(std::fabs(a - numeric) / std::max({1.0, std::fabs(a), std::fabs(numeric)}), 2e-2)
          << e.name << "[" << at - e.offset << "]: analytic " << a << " numeric " << numeric;
    }
  }
}

TEST(ModelGraph, FrozenParametersComeFirstAndTrainedGradientsAreUnchanged) {
  auto plain = build(kGraph, {1, 6, 6});
  auto frozen = build(kGraph, {1, 6, 6}, {"stem", "bn", "block.conv1"});
  size_t frozen_count = 0;
  for (const ParamEntry& e : frozen->parameter_entries()) {
    const bool is_frozen = e.use == ParamUse::Frozen;
    EXPECT_EQ(is_frozen, e.name.rfind("stem.", 0) == 0 || e.name.rfind("bn.", 0) == 0 ||
                             e.name.rfind("block.conv1.", 0) == 0)
        << e.name;
    if (is_frozen) {
      EXPECT_LT(e.offset, frozen->trained_range().first) << e.name;
      frozen_count += num_elements(e.shape);
    } else {
      EXPECT_GE(e.offset, frozen->trained_range().first) << e.name;
    }
  }
  EXPECT_EQ(frozen_count, 4u * 9 + 4 + 4 + 6u * 4 * 9);
  Tensor x({3, 1, 6, 6});
  Rng rng(4);
  for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = rng.normal();
  // Same initial values by name, then the same trained gradients by name.
  Tensor p = plain->host_parameters(), f = frozen->host_parameters();
  for (size_t i = 0; i < plain->parameter_entries().size(); ++i) {
    const ParamEntry &a = plain->parameter_entries()[i], &b = frozen->parameter_entries()[i];
    std::copy(p.data() + a.offset, p.data() + a.offset + num_elements(a.shape), f.data() + b.offset);
  }
  frozen->load_parameters(f);
  const std::vector<int32_t> labels = {1, 0, 2};
  std::vector<uint64_t> ids(3);
  const StepInfo info{Mode::Train, 1, 0, ids.data()};
  std::vector<std::pair<size_t, size_t>> ready;
  plain->step(x, labels.data(), info, 1.0f);
  frozen->step(x, labels.data(), info, 1.0f, [&](size_t b, size_t e) { ready.emplace_back(b, e); });
  for (const auto& [b, e] : ready) EXPECT_GE(b, frozen->trained_range().first);
  for (size_t i = 0; i < plain->parameter_entries().size(); ++i) {
    const ParamEntry &a = plain->parameter_entries()[i], &b = frozen->parameter_entries()[i];
    if (b.use == ParamUse::Frozen) continue;
    for (size_t k = 0; k < num_elements(a.shape); ++k) {
      EXPECT_FLOAT_EQ(plain->gradients().data()[a.offset + k], frozen->gradients().data()[b.offset + k]) << a.name;
    }
  }
}

TEST(ModelGraph, ParameterPatternsMatchNamesPrefixesAndStars) {
  EXPECT_TRUE(parameter_matches("layer1", "layer1.0.conv1.weight"));
  EXPECT_TRUE(parameter_matches("fc.bias", "fc.bias"));
  EXPECT_FALSE(parameter_matches("layer1", "layer10.conv.weight"));
  EXPECT_TRUE(parameter_matches("layer1*", "layer10.conv.weight"));
  EXPECT_FALSE(parameter_matches("fc", "fc2.weight"));
}

TEST(ModelGraph, BottleneckBlocksExpandLikeTorchvision) {
  auto model = build(R"(  - {type: bottleneck, name: layer1, out_channels: 16, repeat: 2}
  - {type: global_avg_pool2d}
  - {type: flatten}
  - {type: dense, units: 2}
  - {type: softmax_cross_entropy}
)",
                     {8, 5, 5});
  std::vector<std::string> names;
  for (const ParamEntry& e : model->parameter_entries()) names.push_back(e.name + " " + to_string(e.shape));
  const std::vector<std::string> first_block = {
      "layer1.0.conv1.weight (4, 8, 1, 1)", "layer1.0.bn1.weight (4)",  "layer1.0.bn1.bias (4)",
      "layer1.0.conv2.weight (4, 4, 3, 3)", "layer1.0.bn2.weight (4)",  "layer1.0.bn2.bias (4)",
      "layer1.0.conv3.weight (16, 4, 1, 1)", "layer1.0.bn3.weight (16)", "layer1.0.bn3.bias (16)",
      "layer1.0.downsample.0.weight (16, 8, 1, 1)", "layer1.0.downsample.1.weight (16)",
      "layer1.0.downsample.1.bias (16)", "layer1.1.conv1.weight (4, 16, 1, 1)"};
  ASSERT_GE(names.size(), first_block.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + first_block.size()), first_block);
  // The second block keeps the shape: no projection.
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& s) { return s.find("downsample") != std::string::npos; }), 3);
}

TEST(ModelGraph, ConfigErrorsNameTheLineAndKey) {
  const std::string unknown = graph_error(R"(  - {type: conv2d, out_channels: 2, kernel: 3}
  - {type: flatten, inputs: [nowhere]}
  - {type: softmax_cross_entropy}
)");
  EXPECT_NE(unknown.find("graph.yaml:3: key 'model[1].inputs'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("names no earlier layer: 'nowhere'"), std::string::npos) << unknown;

  const std::string cycle = graph_error(R"(  - {type: conv2d, name: a, out_channels: 2, kernel: 3, inputs: [b]}
  - {type: conv2d, name: b, out_channels: 2, kernel: 1}
  - {type: flatten}
  - {type: softmax_cross_entropy}
)");
  EXPECT_NE(cycle.find("no cycle"), std::string::npos) << cycle;

  const std::string shapes = graph_error(R"(  - {type: conv2d, name: a, out_channels: 2, kernel: 3}
  - {type: conv2d, name: b, out_channels: 3, kernel: 3}
  - {type: add, inputs: [a, b]}
  - {type: flatten}
  - {type: softmax_cross_entropy}
)");
  EXPECT_NE(shapes.find("graph.yaml:4: key 'model[2].type'"), std::string::npos) << shapes;
  EXPECT_NE(shapes.find("add needs inputs of one shape"), std::string::npos) << shapes;

  const std::string dangling = graph_error(R"(  - {type: conv2d, name: a, out_channels: 2, kernel: 3}
  - {type: conv2d, name: b, out_channels: 2, kernel: 3, inputs: [input]}
  - {type: flatten, inputs: [b]}
  - {type: softmax_cross_entropy}
)");
  EXPECT_NE(dangling.find("the output of layer 'a' feeds no later layer"), std::string::npos) << dangling;

  const std::string twice = graph_error(R"(  - {type: conv2d, name: a, out_channels: 2, kernel: 3}
  - {type: relu, name: a}
  - {type: flatten}
  - {type: softmax_cross_entropy}
)");
  EXPECT_NE(twice.find("layer name 'a' is used twice"), std::string::npos) << twice;

  const std::string block = graph_error(R"(  - {type: basic_block, out_channel: 4}
  - {type: flatten}
  - {type: softmax_cross_entropy}
)");
  EXPECT_NE(block.find("out_channels"), std::string::npos) << block;

  const std::string loss_early = graph_error(R"(  - {type: flatten}
  - {type: softmax_cross_entropy}
  - {type: dense, units: 3}
)");
  EXPECT_NE(loss_early.find("a loss layer must be the last layer"), std::string::npos) << loss_early;
}

TEST(ModelGraph, SequentialModelsKeepTheirParameterNames) {
  auto model = build(R"(  - {type: conv2d, out_channels: 2, kernel: 3}
  - {type: relu}
  - {type: flatten}
  - {type: dense, units: 3}
  - {type: softmax_cross_entropy}
)",
                     {1, 5, 5});
  std::vector<std::string> names;
  for (const ParamEntry& e : model->parameter_entries()) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.conv2d.weight", "0.conv2d.bias", "3.dense.weight", "3.dense.bias"}));
}

}  // namespace
}  // namespace dptrain
