// Layer::work: the FLOPs and bytes each layer type counts per sample, against hand computations.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "layers/add.h"
#include "layers/concat.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

// Expects every field of `actual` to equal `expected`'s.
void expect_work(const LayerWork& actual, const LayerWork& expected) {
  EXPECT_EQ(actual.bound, expected.bound);
  EXPECT_DOUBLE_EQ(actual.forward_flops, expected.forward_flops);
  EXPECT_DOUBLE_EQ(actual.forward_bytes, expected.forward_bytes);
  EXPECT_DOUBLE_EQ(actual.backward_flops, expected.backward_flops);
  EXPECT_DOUBLE_EQ(actual.backward_bytes, expected.backward_bytes);
}

TEST(LayerWork, ConvWithGroupsStrideDilationAndBias) {
  // Input (4, 9, 9); a 3x3 kernel dilated by 2 spans 5: Ho = Wo = (9 + 2 - 5) / 2 + 1 = 4.
  auto conv = make_layer("{type: conv2d, out_channels: 6, kernel: 3, stride: 2, padding: 1, dilation: 2, groups: 2}",
                         {4, 9, 9});
  ASSERT_EQ(conv->output_shape(), (Shape{6, 4, 4}));
  const double outputs = 6 * 4 * 4;
  const double product = 2 * outputs * (4 / 2) * 3 * 3;  // 3456: each output reads C / groups = 2 channels
  const double in = 4.0 * 4 * 9 * 9, out = 4.0 * outputs;
  expect_work(conv->work(InputGradient::Computed),
              {WorkBound::Arithmetic, product + outputs, in + out, 2 * product + outputs, 2 * in + out});
  expect_work(conv->work(InputGradient::Skipped),
              {WorkBound::Arithmetic, product + outputs, in + out, product + outputs, in + out});
  EXPECT_DOUBLE_EQ(conv->work(InputGradient::Computed).forward_flops, 3552);
}

TEST(LayerWork, ConvWithoutBiasCountsOnlyTheProducts) {
  auto conv = make_layer("{type: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}", {3, 5, 5});
  const double product = 2.0 * 8 * 5 * 5 * 3 * 3 * 3;
  EXPECT_DOUBLE_EQ(conv->work(InputGradient::Skipped).forward_flops, product);
  EXPECT_DOUBLE_EQ(conv->work(InputGradient::Skipped).backward_flops, product);
  EXPECT_DOUBLE_EQ(conv->work(InputGradient::Computed).backward_flops, 2 * product);
}

TEST(LayerWork, ConvCoveringItsWholeInputCountsAsADenseLayer) {
  auto conv = make_layer("{type: conv2d, out_channels: 7, kernel: 5}", {3, 5, 5});
  auto dense = make_layer("{type: dense, units: 7}", {3, 5, 5});
  ASSERT_EQ(conv->output_shape(), (Shape{7, 1, 1}));
  expect_work(conv->work(InputGradient::Computed), dense->work(InputGradient::Computed));
  expect_work(conv->work(InputGradient::Skipped), dense->work(InputGradient::Skipped));
}

TEST(LayerWork, Dense) {
  auto dense = make_layer("{type: dense, units: 5, bias: false}", {2, 3, 4});  // F = 24
  expect_work(dense->work(InputGradient::Computed), {WorkBound::Arithmetic, 240, 4.0 * 29, 480, 4.0 * 53});
  expect_work(dense->work(InputGradient::Skipped), {WorkBound::Arithmetic, 240, 4.0 * 29, 240, 4.0 * 29});
  auto biased = make_layer("{type: dense, units: 5}", {24});
  EXPECT_DOUBLE_EQ(biased->work(InputGradient::Computed).forward_flops, 245);
  EXPECT_DOUBLE_EQ(biased->work(InputGradient::Computed).backward_flops, 485);
}

TEST(LayerWork, BatchNormIsMemoryBoundWithAFewFlopsAnElement) {
  auto bn = make_layer("{type: batchnorm2d}", {3, 4, 4});  // 48 elements
  expect_work(bn->work(InputGradient::Computed), {WorkBound::Memory, 5 * 48, 4.0 * 3 * 48, 11 * 48, 4.0 * 5 * 48});
  expect_work(bn->work(InputGradient::Skipped), {WorkBound::Memory, 5 * 48, 4.0 * 3 * 48, 5 * 48, 4.0 * 2 * 48});
}

TEST(LayerWork, ElementWiseLayersMoveMemoryOnly) {
  for (const char* yaml : {"{type: relu}", "{type: sigmoid}", "{type: leaky_relu}", "{type: dropout, rate: 0.5}"}) {
    auto layer = make_layer(yaml, {2, 5});
    SCOPED_TRACE(yaml);
    // Forward reads x and writes y; backward reads x and dy and writes dx.
    expect_work(layer->work(InputGradient::Computed), {WorkBound::Memory, 0, 4.0 * 20, 0, 4.0 * 30});
    expect_work(layer->work(InputGradient::Skipped), {WorkBound::Memory, 0, 4.0 * 20, 0, 0});
  }
  auto flatten = make_layer("{type: flatten}", {2, 3, 4});
  expect_work(flatten->work(InputGradient::Computed), {WorkBound::Memory, 0, 4.0 * 48, 0, 4.0 * 48});
}

TEST(LayerWork, Pooling) {
  auto max_pool = make_layer("{type: max_pool2d, kernel: 2}", {2, 6, 6});  // output (2, 3, 3)
  expect_work(max_pool->work(InputGradient::Computed), {WorkBound::Memory, 0, 4.0 * 90, 0, 4.0 * 162});
  auto avg_pool = make_layer("{type: avg_pool2d, kernel: 2}", {2, 6, 6});
  expect_work(avg_pool->work(InputGradient::Computed), {WorkBound::Memory, 18 * 4, 4.0 * 90, 18 * 4, 4.0 * 162});
  auto global = make_layer("{type: global_avg_pool2d}", {3, 4, 4});
  expect_work(global->work(InputGradient::Computed), {WorkBound::Memory, 48, 4.0 * 51, 48, 4.0 * 51});
  EXPECT_DOUBLE_EQ(global->work(InputGradient::Skipped).backward_bytes, 0);
}

TEST(LayerWork, MergeLayers) {
  const AddLayer add({{2, 3}, {2, 3}, {2, 3}}, cpu_backend());  // 6 elements, 2 further inputs
  // Forward: x0 + x1 in one pass (read both, write y), then x2 added (read it and y, write y).
  expect_work(add.work(InputGradient::Computed), {WorkBound::Memory, 12, 4.0 * 6 * 6, 0, 4.0 * 6 * 6});
  const ConcatLayer concat({{2, 3, 3}, {1, 3, 3}}, cpu_backend());  // 27 input elements
  expect_work(concat.work(InputGradient::Computed), {WorkBound::Memory, 0, 4.0 * 54, 0, 4.0 * 54});
  expect_work(concat.work(InputGradient::Skipped), {WorkBound::Memory, 0, 4.0 * 54, 0, 0});
}

}  // namespace
}  // namespace dptrain::testing
