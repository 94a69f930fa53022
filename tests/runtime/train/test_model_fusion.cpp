// Relus absorbed by the layer after them (Model, Fusion::On): which relus are, and a training step
// that computes the same bits as the model with every layer apart (Fusion::Off).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/cpu_backend.h"
#include "runtime/core/rng.h"
#include "runtime/train/model.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

std::unique_ptr<Model> build(const std::string& model_yaml, Fusion fusion) {
  ConfigMap root = ConfigMap::parse("model:\n" + model_yaml, "fusion.yaml");
  std::vector<ConfigMap> layers = root.get_map_list("model");
  return std::make_unique<Model>(layers, Shape{1, 8, 8}, cpu(), 11, std::vector<std::string>{}, fusion);
}

// The demo CNN's shape, small: two conv2d -> relu -> max_pool2d stages, then a dense head.
const char* const kCnn = R"(  - {type: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {type: relu}
  - {type: max_pool2d, kernel: 2}
  - {type: conv2d, out_channels: 5, kernel: 3, padding: 1}
  - {type: relu}
  - {type: max_pool2d, kernel: 2}
  - {type: flatten}
  - {type: dense, units: 6}
  - {type: relu}
  - {type: dense, units: 3}
  - {type: softmax_cross_entropy}
)";

// Whether two float tensors hold the same bits.
bool same_bits(const Tensor& a, const Tensor& b) {
  return a.num_elements() == b.num_elements() &&
         std::memcmp(a.data(), b.data(), a.num_elements() * sizeof(float)) == 0;
}

TEST(ModelFusion, ReluBeforeMaxPoolIsAbsorbed) {
  auto fused = build(kCnn, Fusion::On);
  auto apart = build(kCnn, Fusion::Off);
  for (size_t i = 0; i < fused->layers().size(); ++i) {
    EXPECT_EQ(fused->absorbed(i), i == 1 || i == 4) << i;  // not the relu before the dense layer
    EXPECT_FALSE(apart->absorbed(i)) << i;
  }
  EXPECT_EQ(fused->layer_reads(2), std::vector<size_t>{0});
  EXPECT_EQ(fused->layer_inputs(2), std::vector<size_t>{1});  // the graph itself is unchanged
  EXPECT_EQ(apart->layer_reads(2), std::vector<size_t>{1});
  EXPECT_EQ(fused->fusions(), "relu into max_pool2d (2 layers)");
  EXPECT_EQ(apart->fusions(), "");
  EXPECT_EQ(fused->training_work().flops(), apart->training_work().flops());
}

TEST(ModelFusion, ATrainingStepComputesTheBitsOfTheLayersApart) {
  auto fused = build(kCnn, Fusion::On);
  auto apart = build(kCnn, Fusion::Off);
  ASSERT_TRUE(same_bits(fused->parameters(), apart->parameters()));
  const size_t n = 9;
  Tensor x({n, 1, 8, 8});
  Rng rng(5);
  for (size_t i = 0; i < x.num_elements(); ++i) x.data()[i] = rng.normal();
  std::vector<int32_t> labels(n);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i % 3);
  std::vector<uint64_t> ids(n);
  const StepInfo info{Mode::Train, 1, 0, ids.data()};
  const LossStats a = fused->step(x, labels.data(), info, 1.0f);
  const LossStats b = apart->step(x, labels.data(), info, 1.0f);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_EQ(a.correct, b.correct);
  EXPECT_TRUE(same_bits(fused->gradients(), apart->gradients()));
  EXPECT_TRUE(same_bits(fused->output(2, n), apart->output(2, n)));
  EXPECT_TRUE(same_bits(fused->logits(n), apart->logits(n)));
  // Some gradient reached the first convolution through both absorbed relus.
  bool nonzero = false;
  for (const ParamEntry& e : fused->parameter_entries()) {
    if (e.layer == 0 && e.param == "weight") {
      for (size_t i = 0; i < num_elements(e.shape); ++i) nonzero |= fused->gradients().data()[e.offset + i] != 0.0f;
    }
  }
  EXPECT_TRUE(nonzero);
  // An absorbed relu's output is computed when asked for.
  EXPECT_TRUE(same_bits(fused->output(1, n), apart->output(1, n)));
  EXPECT_TRUE(same_bits(fused->output(4, n), apart->output(4, n)));
}

TEST(ModelFusion, ReluReadTwiceOrBeforeAnotherLayerRunsApart) {
  // The stem's relu feeds the pool and the add; the second relu feeds an average pool.
  const char* const graph = R"(  - {type: conv2d, name: stem, out_channels: 2, kernel: 3, padding: 1}
  - {type: relu, name: r}
  - {type: max_pool2d, name: pool, kernel: 1}
  - {type: add, inputs: [pool, r]}
  - {type: relu, name: r2}
  - {type: avg_pool2d, kernel: 2}
  - {type: flatten}
  - {type: dense, units: 3}
  - {type: softmax_cross_entropy}
)";
  auto model = build(graph, Fusion::On);
  for (size_t i = 0; i < model->layers().size(); ++i) EXPECT_FALSE(model->absorbed(i)) << i;
  EXPECT_EQ(model->fusions(), "");
}

}  // namespace
}  // namespace dptrain
