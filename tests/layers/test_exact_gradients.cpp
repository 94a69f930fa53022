// Summation::Exact (train.reproducible) in the CPU layers with parameters or batch sums: the
// gradients of a batch are the same bits whether one worker or several (simulated by threads) hold
// it and whatever the thread count, and they agree with the float gradients to float precision.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/exact_sum.h"
#include "tests/layers/gradient_check.h"
#include "tests/layers/layer_test_util.h"
#include "tests/layers/threads_sum.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::bind_fresh_parameters;
using testing::make_layer;
using testing::random_tensor;

// One simulated worker: its layer, parameters and exact gradient sums.
struct ExactWorker {
  std::unique_ptr<Layer> layer;
  testing::BoundParams bound;
  std::vector<ExactSums> sums;  // one per parameter
};

ExactWorker make_worker(const std::string& yaml, const Shape& input_shape) {
  ExactWorker w;
  w.layer = make_layer(yaml, input_shape);
  w.bound = bind_fresh_parameters(*w.layer, 5);
  std::vector<ExactSpan> spans;
  for (const auto& spec : w.layer->parameters()) w.sums.emplace_back(num_elements(spec.shape));
  for (ExactSums& s : w.sums) spans.push_back(s.span());
  w.layer->bind_exact(spans);
  return w;
}

// The exact gradients of `layer_yaml` on x with output gradient dy when workers hold the samples
// [cuts[k], cuts[k + 1]), each worker a thread: their exact sums added, rounded to float, as the bits
// of every parameter in order. Also fills `dx` with the input gradient.
std::vector<uint32_t> exact_gradient_bits(const std::string& layer_yaml, const Shape& input_shape, const Tensor& x,
                                          const Tensor& dy, const std::vector<size_t>& cuts, size_t micro_shard,
                                          Tensor* dx = nullptr) {
  const size_t workers = cuts.size() - 1;
  std::vector<ExactWorker> ws;
  for (size_t k = 0; k < workers; ++k) ws.push_back(make_worker(layer_yaml, input_shape));
  testing::ThreadsSum shared(workers);
  const size_t in_size = num_elements(input_shape), out_size = num_elements(ws[0].layer->output_shape());
  std::vector<std::thread> threads;
  for (size_t k = 0; k < workers; ++k) {
    threads.emplace_back([&, k] {
      const size_t n = cuts[k + 1] - cuts[k];
      const Tensor xs = Tensor::view(const_cast<float*>(x.data()) + cuts[k] * in_size, batch_shape(n, input_shape));
      const Tensor dys = Tensor::view(const_cast<float*>(dy.data()) + cuts[k] * out_size,
                                      batch_shape(n, ws[k].layer->output_shape()));
      Tensor y(dys.shape()), dxs(xs.shape());
      StepInfo step{Mode::Train};
      step.summation = Summation::Exact;
      step.micro_shard = micro_shard;
      if (workers > 1) step.batch_stats = &shared;
      ws[k].layer->forward(xs, y, step);
      ws[k].layer->backward(xs, y, dys, &dxs, step);
      if (dx) std::memcpy(dx->data() + cuts[k] * in_size, dxs.data(), dxs.num_elements() * sizeof(float));
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint32_t> bits;
  for (size_t p = 0; p < ws[0].sums.size(); ++p) {
    ExactSums total(ws[0].sums[p].size());
    for (ExactWorker& w : ws) exact::add_sums(total.span(), w.sums[p].data());
    std::vector<float> values(total.size());
    exact::to_float(total.span(), ExactScale::Gradient, values.data());
    for (float v : values) {
      uint32_t b;
      std::memcpy(&b, &v, sizeof b);
      bits.push_back(b);
    }
  }
  return bits;
}

// The float gradients of one worker holding the whole batch, in the same order.
std::vector<float> float_gradients(const std::string& layer_yaml, const Shape& input_shape, const Tensor& x,
                                   const Tensor& dy) {
  auto layer = make_layer(layer_yaml, input_shape);
  testing::BoundParams bound = bind_fresh_parameters(*layer, 5);
  Tensor y(dy.shape()), dx(x.shape());
  layer->forward(x, y, StepInfo{Mode::Train});
  layer->backward(x, y, dy, &dx, StepInfo{Mode::Train});
  std::vector<float> all;
  for (const Tensor& g : bound.grads) all.insert(all.end(), g.data(), g.data() + g.num_elements());
  return all;
}

float from_bits(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

// For each layer: the whole batch on one worker, cut over workers on micro-shard boundaries, and on
// one or two threads, gives the same bits; and those are the float gradients to float precision.
struct ExactCase {
  const char* yaml;
  Shape input;
  size_t batch;
  size_t micro_shard;
  std::vector<std::vector<size_t>> cuts;  // ways to cut the batch over workers
};

void check_exact(const ExactCase& c) {
  const Tensor x = random_tensor(batch_shape(c.batch, c.input), 3);
  auto probe = make_layer(c.yaml, c.input);
  const Tensor dy = random_tensor(batch_shape(c.batch, probe->output_shape()), 4);
  Tensor dx_whole(x.shape()), dx_cut(x.shape());
  const std::vector<uint32_t> whole = exact_gradient_bits(c.yaml, c.input, x, dy, {0, c.batch}, c.micro_shard, &dx_whole);
  for (const std::vector<size_t>& cuts : c.cuts) {
    EXPECT_EQ(exact_gradient_bits(c.yaml, c.input, x, dy, cuts, c.micro_shard, &dx_cut), whole)
        << c.yaml << " over " << cuts.size() - 1 << " workers";
    for (size_t i = 0; i < x.num_elements(); ++i) ASSERT_EQ(dx_cut.data()[i], dx_whole.data()[i]) << c.yaml << " dx " << i;
  }
  const int threads = omp_get_max_threads();
  for (int t : {1, 2}) {
    omp_set_num_threads(t);
    EXPECT_EQ(exact_gradient_bits(c.yaml, c.input, x, dy, {0, c.batch}, c.micro_shard), whole) << c.yaml << ", " << t
                                                                                               << " threads";
  }
  omp_set_num_threads(threads);
  const std::vector<float> reference = float_gradients(c.yaml, c.input, x, dy);
  ASSERT_EQ(reference.size(), whole.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(from_bits(whole[i])) - reference[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(reference[i])));
  }
  EXPECT_LT(worst, 1e-5 * scale) << c.yaml;
  EXPECT_GT(scale, 0.0) << c.yaml;
}

TEST(ExactGradients, Conv2dIsTheSameForAnySplitAndThreadCount) {
  check_exact({"{type: conv2d, out_channels: 4, kernel: 3, padding: 1}", {3, 6, 6}, 8, 1, {{0, 3, 8}, {0, 1, 5, 8}}});
}

TEST(ExactGradients, Conv2dWithStrideAndGroupsIsTheSameForAnySplit) {
  check_exact({"{type: conv2d, out_channels: 4, kernel: 3, stride: 2, groups: 2, bias: false}",
               {2, 7, 7},
               6,
               1,
               {{0, 2, 6}}});
}

TEST(ExactGradients, Conv2dOnOneDnnIsTheSameForSplitsOnMicroShardBoundaries) {
  // Eight input channels: oneDNN's micro-shard kernels where the build has oneDNN, else im2col. The
  // last micro-shard of a batch may be short (9 = 3 + 3 + 3, 7 = 3 + 3 + 1, 5 = 2 + 2 + 1).
  check_exact({"{type: conv2d, out_channels: 16, kernel: 3, padding: 1}", {8, 7, 7}, 9, 3, {{0, 3, 9}, {0, 3, 6, 9}}});
  check_exact({"{type: conv2d, out_channels: 16, kernel: 3, padding: 1}", {8, 7, 7}, 7, 3, {{0, 6, 7}, {0, 3, 7}}});
  check_exact({"{type: conv2d, out_channels: 8, kernel: 3, stride: 2, padding: 1, bias: false}",
               {16, 6, 6},
               5,
               2,
               {{0, 2, 5}, {0, 4, 5}}});
  // One sample per micro-shard: any split.
  check_exact({"{type: conv2d, out_channels: 16, kernel: 3, padding: 1}", {8, 7, 7}, 5, 1, {{0, 1, 5}, {0, 2, 3, 5}}});
}

TEST(ExactGradients, DenseIsTheSameForSplitsOnMicroShardBoundaries) {
  check_exact({"{type: dense, units: 5}", {12}, 12, 3, {{0, 6, 12}, {0, 3, 6, 12}}});
}

TEST(ExactGradients, BatchNormStatisticsAndGradientsAreTheSameForAnySplit) {
  check_exact({"{type: batchnorm2d}", {3, 4, 4}, 7, 1, {{0, 3, 7}, {0, 1, 2, 7}}});
}

TEST(ExactGradients, LayersWithoutExactSumsSayWhoTheyAre) {
  // The float-only layers the model refuses under train.reproducible: none among the CPU layers
  // with parameters, and batch norm with per-worker statistics by design.
  EXPECT_TRUE(make_layer("{type: conv2d, out_channels: 2, kernel: 1}", {1, 2, 2})->exact_gradients());
  EXPECT_TRUE(make_layer("{type: dense, units: 2}", {3})->exact_gradients());
  EXPECT_TRUE(make_layer("{type: batchnorm2d}", {2, 2, 2})->exact_gradients());
  EXPECT_FALSE(make_layer("{type: batchnorm2d, stats: per_worker}", {2, 2, 2})->exact_gradients());
  EXPECT_TRUE(make_layer("{type: relu}", {3})->exact_gradients());
}

}  // namespace
}  // namespace dptrain
