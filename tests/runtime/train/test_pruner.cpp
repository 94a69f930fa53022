// Magnitude pruning (prune:): the gradual schedule, which weights a mask update prunes, that pruned
// weights stay zero whatever the gradient, masks through checkpoints, and config errors that name the key.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "runtime/core/context.h"
#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/core/run_config.h"
#include "runtime/train/model.h"
#include "runtime/train/pruner.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

const std::string kModel = R"(
name: prune_test
data: {type: synthetic, train_samples: 64, test_samples: 8, shape: [1, 6, 6], classes: 3}
model:
  - {type: conv2d, name: conv, out_channels: 4, kernel: 3, padding: 1}
  - {type: relu}
  - {type: flatten}
  - {type: dense, name: fc, units: 3}
  - {type: softmax_cross_entropy}
optimizer: {type: sgd, lr: 0.1}
train: {batch_size: 8, epochs: 4}
)";

RunConfig config_with(const std::string& prune) {
  return RunConfig::parse(kModel + "prune: " + prune + "\n", "prune_test.yaml", {"device=cpu"});
}

struct PrunedModel {
  Context context{DeviceKind::CPU, 1};
  RunConfig config;
  Model model;
  explicit PrunedModel(const std::string& prune)
      : config(config_with(prune)), model(config.model, {1, 6, 6}, context.backend(), 5) {}
};

const ParamEntry& entry(const Model& model, const std::string& name) {
  for (const ParamEntry& e : model.parameter_entries()) {
    if (e.name == name) return e;
  }
  throw std::runtime_error("no parameter " + name);
}

TEST(Pruner, FollowsTheGradualScheduleFromStartToEndEpoch) {
  PrunedModel m("{sparsity: 0.8, start_epoch: 1, end_epoch: 3, every_steps: 5}");
  const Pruner pruner(m.config.prune, m.model, 10);  // steps 10 to 30
  EXPECT_EQ(pruner.target(0), 0.0);
  EXPECT_EQ(pruner.target(9), 0.0);
  EXPECT_EQ(pruner.target(10), 0.0);
  EXPECT_NEAR(pruner.target(20), 0.8 * (1 - 0.125), 1e-12);  // half way: s (1 - (1/2)^3)
  EXPECT_EQ(pruner.target(30), 0.8);
  EXPECT_EQ(pruner.target(1000), 0.8);
  EXPECT_FALSE(pruner.updates_at(5));
  EXPECT_TRUE(pruner.updates_at(10));
  EXPECT_FALSE(pruner.updates_at(12));
  EXPECT_TRUE(pruner.updates_at(15));
  EXPECT_TRUE(pruner.updates_at(30));
  EXPECT_FALSE(pruner.updates_at(35));
}

TEST(Pruner, PrunesTheSmallestWeightsOfEveryConvAndDenseWeightAndNothingElse) {
  PrunedModel m("{sparsity: 0.5, start_epoch: 0, end_epoch: 1}");
  Pruner pruner(m.config.prune, m.model, 4);
  Tensor params = m.model.host_parameters();
  const Tensor before = m.model.host_parameters();
  pruner.update(params, 4);  // end of the schedule: 50%
  for (const ParamEntry& e : m.model.parameter_entries()) {
    const float* w = params.data() + e.offset;
    const float* old = before.data() + e.offset;
    const size_t n = num_elements(e.shape);
    const auto zeros = static_cast<size_t>(std::count(w, w + n, 0.0f));
    if (e.param != "weight") {  // biases are not pruned
      EXPECT_TRUE(std::equal(w, w + n, old)) << e.name;
      continue;
    }
    EXPECT_EQ(zeros, n / 2) << e.name;
    // Every pruned weight was at most as large as every kept one.
    float largest_pruned = 0, smallest_kept = INFINITY;
    for (size_t i = 0; i < n; ++i) {
      if (w[i] == 0.0f) largest_pruned = std::max(largest_pruned, std::fabs(old[i]));
      else smallest_kept = std::min(smallest_kept, std::fabs(old[i]));
    }
    EXPECT_LE(largest_pruned, smallest_kept) << e.name;
  }
  EXPECT_NEAR(pruner.total_sparsity(), 0.5, 0.01);
  ASSERT_EQ(pruner.sparsity().size(), 2u);
  EXPECT_EQ(pruner.sparsity()[0].first, "conv.weight");
  EXPECT_EQ(pruner.sparsity()[1].first, "fc.weight");
}

TEST(Pruner, GlobalScopeUsesOneThresholdOverEveryTensor) {
  PrunedModel m("{sparsity: 0.5, end_epoch: 1, scope: global}");
  Pruner pruner(m.config.prune, m.model, 1);
  Tensor params = m.model.host_parameters();
  const Tensor before = m.model.host_parameters();
  pruner.update(params, 1);
  size_t zeros = 0, total = 0;
  float largest_pruned = 0, smallest_kept = INFINITY;
  for (const std::string& name : {"conv.weight", "fc.weight"}) {
    const ParamEntry& e = entry(m.model, name);
    for (size_t i = 0; i < num_elements(e.shape); ++i, ++total) {
      const float old = std::fabs(before.data()[e.offset + i]);
      if (params.data()[e.offset + i] == 0.0f) {
        ++zeros;
        largest_pruned = std::max(largest_pruned, old);
      } else {
        smallest_kept = std::min(smallest_kept, old);
      }
    }
  }
  EXPECT_EQ(zeros, total / 2);
  EXPECT_LE(largest_pruned, smallest_kept);  // one threshold across both tensors
  // The two tensors' shares differ (their weights have different scales), and add up to the total.
  const auto shares = pruner.sparsity();
  EXPECT_NE(shares[0].second, shares[1].second);
  EXPECT_NEAR(pruner.total_sparsity(), 0.5, 1e-3);
}

TEST(Pruner, PrunedWeightsGetNoGradientAndStayZero) {
  PrunedModel m("{sparsity: 0.75, end_epoch: 1}");
  Pruner pruner(m.config.prune, m.model, 1);
  Tensor params = m.model.host_parameters();
  pruner.update(params, 1);
  Tensor grads = m.model.host_parameters();
  std::fill(grads.data(), grads.data() + grads.num_elements(), 1.0f);
  pruner.mask_gradients(grads);
  const ParamEntry& fc = entry(m.model, "fc.weight");
  size_t masked = 0;
  for (size_t i = 0; i < num_elements(fc.shape); ++i) {
    const bool pruned = params.data()[fc.offset + i] == 0.0f;
    EXPECT_EQ(grads.data()[fc.offset + i], pruned ? 0.0f : 1.0f);
    masked += pruned;
  }
  EXPECT_EQ(masked, num_elements(fc.shape) * 3 / 4);
  // An update that moves every weight (momentum, weight decay) is undone for the pruned ones.
  for (size_t i = 0; i < params.num_elements(); ++i) params.data()[i] += 0.25f;
  pruner.apply(params);
  size_t zeros = 0;
  for (size_t i = 0; i < num_elements(fc.shape); ++i) zeros += params.data()[fc.offset + i] == 0.0f;
  EXPECT_EQ(zeros, masked);
}

TEST(Pruner, MasksRoundTripThroughCheckpointTensorsAndAMismatchIsRefused) {
  PrunedModel m("{sparsity: 0.6, end_epoch: 1}");
  Pruner pruner(m.config.prune, m.model, 1);
  Tensor params = m.model.host_parameters();
  pruner.update(params, 1);
  const std::vector<CheckpointTensor> saved = pruner.masks();
  Pruner restored(m.config.prune, m.model, 1);
  EXPECT_EQ(restored.total_sparsity(), 0.0);
  restored.load(saved, "ckpt.h5");
  EXPECT_EQ(restored.sparsity(), pruner.sparsity());
  Tensor other = m.model.host_parameters();
  restored.apply(other);
  EXPECT_TRUE(std::equal(other.data(), other.data() + other.num_elements(), params.data()));

  std::vector<CheckpointTensor> wrong = saved;
  wrong[0].shape = {1, 2};
  wrong[0].values = {1, 0};
  try {
    restored.load(wrong, "ckpt.h5");
    FAIL() << "a mask of another shape was accepted";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("ckpt.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("conv.weight"), std::string::npos) << e.what();
  }
}

TEST(Pruner, LayersChoosesTheTensorsAndAnEntryThatMatchesNothingIsAConfigError) {
  PrunedModel m("{sparsity: 0.5, layers: [fc]}");
  const Pruner pruner(m.config.prune, m.model, 4);
  ASSERT_EQ(pruner.sparsity().size(), 1u);
  EXPECT_EQ(pruner.sparsity()[0].first, "fc.weight");

  PrunedModel typo("{sparsity: 0.5, layers: [fc2]}");
  try {
    Pruner refused(typo.config.prune, typo.model, 4);
    FAIL() << "prune.layers entry fc2 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("prune.layers"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fc2"), std::string::npos) << e.what();
  }
}

TEST(Pruner, BadSettingsAreConfigErrorsNamingTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{sparsity: 1}", "prune.sparsity"},
      {"{sparsity: 0}", "prune.sparsity"},
      {"{start_epoch: 1}", "prune.sparsity"},  // required
      {"{sparsity: 0.5, start_epoch: 2, end_epoch: 1}", "prune.end_epoch"},
      {"{sparsity: 0.5, end_epoch: 9}", "prune.end_epoch"},
      {"{sparsity: 0.5, every_steps: 0}", "prune.every_steps"},
      {"{sparsity: 0.5, schedule: cubic}", "schedule"},
      {"{sparsity: 0.5, scope: model}", "prune.scope"},
  };
  for (const auto& [prune, key] : cases) {
    try {
      config_with(prune);
      ADD_FAILURE() << "prune: " << prune << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << prune << ": " << e.what();
    }
  }
  EXPECT_FALSE(RunConfig::parse(kModel, "prune_test.yaml", {"device=cpu"}).prune.enabled);
}

}  // namespace
}  // namespace dptrain
