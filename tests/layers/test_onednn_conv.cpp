// conv2d on oneDNN's kernels (CpuConvolution): which layers take them, that they agree with the
// im2col + BLAS reference across batch sizes, and that an exact step computes each micro-shard alone
// (the exact gradients are in test_exact_gradients.cpp); the shapes and gradients of every geometry are in
// test_conv2d.cpp, which runs each case with both kernels.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "layers/cpu/int8_conv.h"
#include "runtime/core/errors.h"
#include "tests/layers/layer_test_util.h"

namespace dptrain::testing {
namespace DPTRAIN_TEST_UNIT {

#define SKIP_WITHOUT_ONEDNN()                                                                     \
  if (!int8_has_onednn()) {                                                                       \
    GTEST_SKIP() << "this build has no oneDNN (libdnnl-dev): conv2d trains with im2col + BLAS only"; \
  }

std::string conv_yaml(size_t out_channels, size_t groups) {
  return "{type: conv2d, out_channels: " + std::to_string(out_channels) + ", kernel: 3, padding: 1, groups: " +
         std::to_string(groups) + "}";
}

bool runs_onednn(const Layer& layer) { return layer.kernel().rfind("oneDNN", 0) == 0; }

TEST(OneDnnConv2d, AutoTakesItWhereAGroupHasEightInputChannels) {
  SKIP_WITHOUT_ONEDNN();
  EXPECT_TRUE(runs_onednn(*make_layer(conv_yaml(16, 1), {16, 8, 8})));
  EXPECT_TRUE(runs_onednn(*make_layer(conv_yaml(16, 2), {16, 8, 8})));   // 8 per group
  EXPECT_FALSE(runs_onednn(*make_layer(conv_yaml(16, 4), {16, 8, 8})));  // 4 per group
  EXPECT_FALSE(runs_onednn(*make_layer(conv_yaml(32, 1), {1, 8, 8})));   // a first layer on one channel
  EXPECT_EQ(make_layer(conv_yaml(32, 1), {1, 8, 8})->kernel(), "im2col + BLAS");
  // Forced either way.
  EXPECT_TRUE(runs_onednn(*make_layer(conv_yaml(32, 1), {1, 8, 8}, CpuConvolution::OneDnn)));
  EXPECT_FALSE(runs_onednn(*make_layer(conv_yaml(16, 1), {16, 8, 8}, CpuConvolution::Im2col)));
}

TEST(OneDnnConv2d, ForcingItWithoutOneDnnIsAnErrorNamingTheKey) {
  if (int8_has_onednn()) {
    EXPECT_NO_THROW(make_layer(conv_yaml(8, 1), {3, 5, 5}, CpuConvolution::OneDnn));
    return;
  }
  try {
    make_layer(conv_yaml(8, 1), {3, 5, 5}, CpuConvolution::OneDnn);
    FAIL() << "cpu_convolution: onednn accepted by a build without oneDNN";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("cpu_convolution: onednn"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("set cpu_convolution: auto"), std::string::npos) << e.what();
  }
}

// One layer with oneDNN and one with im2col, the same parameters.
struct Pair {
  std::unique_ptr<Layer> onednn, im2col;
  BoundParams onednn_params, im2col_params;
};

Pair make_pair(const std::string& yaml, const Shape& input_shape) {
  Pair p;
  p.onednn = make_layer(yaml, input_shape, CpuConvolution::OneDnn);
  p.im2col = make_layer(yaml, input_shape, CpuConvolution::Im2col);
  p.onednn_params = bind_fresh_parameters(*p.onednn, 3);
  p.im2col_params = bind_fresh_parameters(*p.im2col, 3);
  return p;
}

TEST(OneDnnConv2d, AgreesWithIm2colWhenTheBatchSizeChanges) {
  SKIP_WITHOUT_ONEDNN();
  Pair p = make_pair("{type: conv2d, out_channels: 16, kernel: 3, padding: 1, stride: 2}", {8, 9, 9});
  for (size_t n : {4, 7, 1, 4}) {
    SCOPED_TRACE("batch " + std::to_string(n));
    const Tensor x = random_tensor(batch_shape(n, p.onednn->input_shape()), 10 + n);
    const Tensor dy = random_tensor(batch_shape(n, p.onednn->output_shape()), 20 + n);
    Tensor y1(dy.shape()), y2(dy.shape()), dx1(x.shape()), dx2(x.shape());
    p.onednn->forward(x, y1, {});
    p.im2col->forward(x, y2, {});
    p.onednn->backward(x, y1, dy, &dx1, {});
    p.im2col->backward(x, y2, dy, &dx2, {});
    expect_near_all(y1, to_doubles(y2), 1e-4, "y");
    expect_near_all(dx1, to_doubles(dx2), 1e-4, "dx");
    expect_near_all(p.onednn_params.grads[0], to_doubles(p.im2col_params.grads[0]), 1e-4, "dweight");
    expect_near_all(p.onednn_params.grads[1], to_doubles(p.im2col_params.grads[1]), 1e-4, "dbias");
  }
}

// The forward of `layer` over samples [first, first + count) of x alone, as a worker holding only
// them computes it.
Tensor forward_alone(Layer& layer, const Tensor& x, size_t first, size_t count, const StepInfo& step) {
  const size_t in_size = num_elements(layer.input_shape());
  const Tensor part =
      Tensor::view(const_cast<float*>(x.data()) + first * in_size, batch_shape(count, layer.input_shape()));
  Tensor y(batch_shape(count, layer.output_shape()));
  layer.forward(part, y, step);
  return y;
}

TEST(OneDnnConv2d, ReproducibleStepsComputeEachMicroShardAlone) {
  SKIP_WITHOUT_ONEDNN();
  Pair p = make_pair("{type: conv2d, out_channels: 8, kernel: 3, padding: 1}", {16, 6, 6});
  const size_t n = 5, shard = 2, out_size = num_elements(p.onednn->output_shape());
  const Tensor x = random_tensor(batch_shape(n, p.onednn->input_shape()), 7);
  StepInfo train;
  train.summation = Summation::Exact;
  train.micro_shard = shard;
  StepInfo eval = train;
  eval.mode = Mode::Eval;
  for (const StepInfo& step : {train, eval}) {
    const bool training = step.mode == Mode::Train;
    SCOPED_TRACE(training ? "training step" : "evaluation");
    const Tensor batch = forward_alone(*p.onednn, x, 0, n, step);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Tensor one_thread = forward_alone(*p.onednn, x, 0, n, step);
    omp_set_num_threads(threads);
    EXPECT_EQ(std::memcmp(batch.data(), one_thread.data(), batch.size_bytes()), 0)
        << "the thread count changed the bits";
    // A training step's micro-shards [0, 2), [2, 4), [4, 5) alone; in evaluation, each sample alone
    // (its batches need not start on micro-shard boundaries).
    const size_t unit = training ? shard : 1;
    for (size_t first = 0; first < n; first += unit) {
      const size_t count = std::min(unit, n - first);
      const Tensor alone = forward_alone(*p.onednn, x, first, count, step);
      EXPECT_EQ(std::memcmp(alone.data(), batch.data() + first * out_size, alone.size_bytes()), 0)
          << "samples " << first << " to " << first + count;
    }
    Tensor im2col(batch.shape());
    p.im2col->forward(x, im2col, step);
    expect_near_all(batch, to_doubles(im2col), 1e-4, "y");
  }
}

}  // namespace
}  // namespace dptrain::testing
