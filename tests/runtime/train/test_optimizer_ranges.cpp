// Update ranges (weight decay exclusions, frozen parameters) and gradient clipping by global norm.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/cpu_backend.h"
#include "runtime/core/errors.h"
#include "runtime/core/tensor.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/update_ranges.h"
#include "tests/runtime/core/host_backend.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

CpuBackend& cpu() {
  static CpuBackend backend;
  return backend;
}

ParamEntry entry(const std::string& layer_type, const std::string& param, size_t size, size_t offset,
                 ParamUse use = ParamUse::Trained) {
  return {0, layer_type + "." + param, layer_type, param, {size}, offset, use};
}

// conv2d -> batchnorm2d -> dense, each parameter padded to 16 floats: 112 floats in all.
constexpr size_t kFlat = 112;
std::vector<ParamEntry> small_cnn() {
  return {entry("conv2d", "weight", 24, 0),    entry("conv2d", "bias", 2, 32),  entry("batchnorm2d", "weight", 2, 48),
          entry("batchnorm2d", "bias", 2, 64), entry("dense", "weight", 8, 80), entry("dense", "bias", 4, 96)};
}

std::unique_ptr<Optimizer> build(const std::string& body, const std::vector<ParamEntry>& layout, size_t flat,
                                 Backend& backend = cpu()) {
  ConfigMap root = ConfigMap::parse("optimizer:\n" + body, "run.yaml");
  ConfigMap config = root.get_map("optimizer");
  auto optimizer = make_optimizer(config, layout, flat, backend);
  config.finish();
  return optimizer;
}

std::string config_error(const std::string& body) {
  try {
    build(body, small_cnn(), kFlat);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// "[begin, end) decay" for each range, to compare whole plans at once.
std::string text(const std::vector<UpdateRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    out += "[" + std::to_string(r.begin) + ", " + std::to_string(r.end) + ") " + format_number(r.weight_decay) + "; ";
  }
  return out;
}

std::vector<UpdateRange> plan(const std::vector<ParamEntry>& layout, std::vector<DecayExclusion> exclusions,
                              double weight_decay = 0.1) {
  return plan_update_ranges(layout, kFlat, weight_decay, exclusions);
}

// Values that differ in every element, so that a touched element shows.
Tensor pattern(size_t n, double phase) {
  Tensor t({n});
  for (size_t i = 0; i < n; ++i) t.data()[i] = static_cast<float>(std::sin(0.7 * static_cast<double>(i) + phase));
  return t;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

TEST(UpdateRanges, WithoutExclusionsOneRangeCoversTheWholeBuffer) {
  EXPECT_EQ(text(plan(small_cnn(), {})), "[0, 112) 0.1; ");
  // Exclusions change nothing when there is no decay to skip.
  EXPECT_EQ(text(plan(small_cnn(), {DecayExclusion::Bias, DecayExclusion::Norm}, 0.0)), "[0, 112) 0; ");
}

TEST(UpdateRanges, ExclusionsSplitTheBufferAndNeighboursMerge) {
  EXPECT_EQ(text(plan(small_cnn(), {DecayExclusion::Bias})),
            "[0, 32) 0.1; [32, 48) 0; [48, 64) 0.1; [64, 80) 0; [80, 96) 0.1; [96, 112) 0; ");
  EXPECT_EQ(text(plan(small_cnn(), {DecayExclusion::Norm})), "[0, 48) 0.1; [48, 80) 0; [80, 112) 0.1; ");
  EXPECT_EQ(text(plan(small_cnn(), {DecayExclusion::Norm, DecayExclusion::Bias})),
            "[0, 32) 0.1; [32, 80) 0; [80, 96) 0.1; [96, 112) 0; ");
}

TEST(UpdateRanges, FrozenEntriesGetNoRangeAndTheOrderOfEntriesDoesNotMatter) {
  std::vector<ParamEntry> layout = small_cnn();
  layout[0].use = ParamUse::Frozen;
  layout[1].use = ParamUse::Frozen;
  EXPECT_EQ(text(plan(layout, {})), "[48, 112) 0.1; ");
  layout = small_cnn();
  layout[2].use = ParamUse::Frozen;
  EXPECT_EQ(text(plan(layout, {DecayExclusion::Norm})), "[0, 48) 0.1; [64, 80) 0; [80, 112) 0.1; ");
  std::reverse(layout.begin(), layout.end());
  EXPECT_EQ(text(plan(layout, {DecayExclusion::Norm})), "[0, 48) 0.1; [64, 80) 0; [80, 112) 0.1; ");
  EXPECT_EQ(text(merge_adjacent(plan(layout, {DecayExclusion::Norm}))), "[0, 48) 0; [64, 112) 0; ");
}

TEST(UpdateRanges, OverlappingOrOversizedLayoutsAreRejected) {
  std::vector<ParamEntry> layout = small_cnn();
  layout[1].offset = 20;  // inside conv2d.weight [0, 24)
  EXPECT_THROW(plan(layout, {}), ShapeError);
  layout = small_cnn();
  layout[5].shape = {17};  // [96, 113) in 112 floats
  EXPECT_THROW(plan(layout, {}), ShapeError);
}

TEST(UpdateRanges, BiasMeansTheParameterNameAndNormTheLayerType) {
  EXPECT_TRUE(decay_excluded(entry("dense", "bias", 1, 0), {DecayExclusion::Bias}));
  EXPECT_FALSE(decay_excluded(entry("dense", "weight", 1, 0), {DecayExclusion::Bias}));
  EXPECT_FALSE(decay_excluded(entry("dense", "bias", 1, 0), {DecayExclusion::Norm}));
  EXPECT_TRUE(decay_excluded(entry("batchnorm2d", "weight", 1, 0), {DecayExclusion::Norm}));
  EXPECT_FALSE(decay_excluded(entry("batchnorm2d", "weight", 1, 0), {DecayExclusion::Bias}));
  EXPECT_FALSE(decay_excluded(entry("batchnorm2d", "weight", 1, 0), {}));
}

TEST(OptimizerRanges, WithoutExclusionsTheUpdateIsTheSingleWholeBufferUpdateBitForBit) {
  Tensor params = pattern(kFlat, 0.3), momentum({kFlat});
  testing::HostBackend counting;
  auto sgd = build("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  weight_decay: 0.01\n", small_cnn(), kFlat, counting);
  Tensor p = params.to(counting);
  for (int s = 0; s < 3; ++s) {
    const Tensor g = pattern(kFlat, s);
    sgd->step(p, g.to(counting), 0.1f);
    SgdUpdate u;  // what the optimizer did before it knew the layout
    u.params = params.data();
    u.grads = g.data();
    u.momentum = momentum.data();
    u.n = kFlat;
    u.lr = 0.1f;
    u.mu = 0.9f;
    u.weight_decay = 0.01f;
    cpu().sgd_update(u);
  }
  EXPECT_EQ(counting.updates, 3u);  // one update a step
  EXPECT_TRUE(same_bits(p.to_host().data(), params.data(), kFlat));
  EXPECT_TRUE(same_bits(sgd->state()[0].second->to_host().data(), momentum.data(), kFlat));
}

// Runs `steps` steps of `body` on the small CNN's layout and of the same optimizer without weight
// decay and with it on one whole buffer; each element must follow the one its exclusion picks.
void expect_decay_only_where_not_excluded(const std::string& body, const std::string& exclude,
                                          const std::vector<DecayExclusion>& exclusions) {
  auto split = build(body + "  weight_decay_exclude: " + exclude + "\n", small_cnn(), kFlat);
  const std::vector<ParamEntry> whole = {entry("dense", "weight", kFlat, 0)};
  auto decayed = build(body, whole, kFlat);
  std::string plain_body = body;
  plain_body.replace(plain_body.find("weight_decay: 0.1"), 17, "weight_decay: 0");
  auto plain = build(plain_body, whole, kFlat);
  Tensor p = pattern(kFlat, 0.3), p_decayed = pattern(kFlat, 0.3), p_plain = pattern(kFlat, 0.3);
  for (int s = 0; s < 3; ++s) {
    const Tensor g = pattern(kFlat, s);
    split->step(p, g, 0.05f);
    decayed->step(p_decayed, g, 0.05f);
    plain->step(p_plain, g, 0.05f);
  }
  for (const ParamEntry& e : small_cnn()) {
    const Tensor& expected = decay_excluded(e, exclusions) ? p_plain : p_decayed;
    for (size_t i = e.offset; i < e.offset + num_elements(e.shape); ++i) {
      EXPECT_NEAR(p.data()[i], expected.data()[i], 1e-6) << body << exclude << " " << e.name << " element " << i;
    }
  }
  EXPECT_GT(std::fabs(p_plain.data()[0] - p_decayed.data()[0]), 1e-4) << "the decay must show";
}

TEST(OptimizerRanges, ExcludedParametersGetNoWeightDecay) {
  const std::string sgd = "  type: sgd\n  lr: 0.05\n  momentum: 0.9\n  nesterov: true\n  weight_decay: 0.1\n";
  const std::string adam = "  type: adam\n  lr: 0.05\n  weight_decay: 0.1\n";
  const std::string adamw = "  type: adam\n  lr: 0.05\n  weight_decay: 0.1\n  decoupled_weight_decay: true\n";
  for (const std::string& body : {sgd, adam, adamw}) {
    expect_decay_only_where_not_excluded(body, "[bias]", {DecayExclusion::Bias});
    expect_decay_only_where_not_excluded(body, "norm", {DecayExclusion::Norm});
    expect_decay_only_where_not_excluded(body, "[bias, norm]", {DecayExclusion::Bias, DecayExclusion::Norm});
  }
}

TEST(OptimizerRanges, FrozenParametersAndTheirStateKeepTheirBits) {
  std::vector<ParamEntry> layout = small_cnn();
  layout[2].use = ParamUse::Frozen;  // batchnorm2d.weight [48, 50), its range [48, 64)
  layout[4].use = ParamUse::Frozen;  // dense.weight [80, 88), its range [80, 96)
  for (const char* body : {"  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  weight_decay: 0.1\n",
                           "  type: adam\n  lr: 0.1\n  weight_decay: 0.1\n  decoupled_weight_decay: true\n"}) {
    testing::HostBackend counting;
    auto optimizer = build(body, layout, kFlat, counting);
    for (auto& [name, tensor] : optimizer->state()) tensor->copy_from(pattern(kFlat, 2.0));  // as if resumed
    const Tensor start = pattern(kFlat, 0.3);
    Tensor p = start.to(counting);
    for (int s = 0; s < 2; ++s) optimizer->step(p, pattern(kFlat, s).to(counting), 0.1f);
    EXPECT_EQ(counting.updates, 2u * 3u) << body;  // [0, 48), [64, 80), [96, 112) each step
    const Tensor after = p.to_host();
    const Tensor state_start = pattern(kFlat, 2.0);
    for (const size_t begin : {48u, 80u}) {
      EXPECT_TRUE(same_bits(after.data() + begin, start.data() + begin, 16)) << body << " params at " << begin;
      for (auto& [name, tensor] : optimizer->state()) {
        const Tensor state = tensor->to_host();
        EXPECT_TRUE(same_bits(state.data() + begin, state_start.data() + begin, 16)) << body << name << " at " << begin;
      }
    }
    EXPECT_NE(after.data()[0], start.data()[0]) << body;  // trained parameters do move
    EXPECT_NE(after.data()[64], start.data()[64]) << body;
    EXPECT_NE(optimizer->describe().find(", 10 parameters frozen"), std::string::npos) << optimizer->describe();
  }
}

TEST(GradClip, ScalesTrainedGradientsToTheMaximumNorm) {
  std::vector<ParamEntry> layout = small_cnn();
  layout[4].use = ParamUse::Frozen;  // dense.weight: neither measured nor scaled
  auto sgd = build("  type: sgd\n  lr: 0.1\n  clip_grad_norm: 1.0\n", layout, kFlat);
  Tensor g({kFlat});
  g.data()[0] = 3.0f;     // conv2d.weight
  g.data()[64] = -4.0f;   // batchnorm2d.bias: norm 5
  g.data()[80] = 100.0f;  // frozen
  sgd->clip_grad_norm(g);
  ASSERT_TRUE(sgd->last_grad_norm().has_value());
  EXPECT_DOUBLE_EQ(*sgd->last_grad_norm(), 5.0);
  const float coefficient = static_cast<float>(1.0 / (5.0 + 1e-6));
  EXPECT_EQ(g.data()[0], 3.0f * coefficient);
  EXPECT_EQ(g.data()[64], -4.0f * coefficient);
  EXPECT_EQ(g.data()[80], 100.0f);
  EXPECT_NEAR(std::hypot(g.data()[0], g.data()[64]), 1.0, 1e-6);
  // Clipped once, the gradients measure the maximum (up to the 1e-6 torch adds) the next time.
  sgd->clip_grad_norm(g);
  EXPECT_NEAR(*sgd->last_grad_norm(), 1.0, 1e-6);
  EXPECT_NE(sgd->describe().find(", clip_grad_norm 1"), std::string::npos) << sgd->describe();
}

TEST(GradClip, LeavesSmallGradientsAloneAndIsOffByDefault) {
  auto clipping = build("  type: adam\n  lr: 0.1\n  clip_grad_norm: 10\n", small_cnn(), kFlat);
  Tensor g = pattern(kFlat, 1.0);
  const Tensor before = g.to_host();
  double sum = 0;
  for (size_t i = 0; i < kFlat; ++i) sum += static_cast<double>(before.data()[i]) * before.data()[i];
  clipping->clip_grad_norm(g);
  EXPECT_NEAR(*clipping->last_grad_norm(), std::sqrt(sum), 1e-9);
  EXPECT_LT(*clipping->last_grad_norm(), 10.0);
  EXPECT_TRUE(same_bits(g.data(), before.data(), kFlat));

  auto plain = build("  type: adam\n  lr: 0.1\n", small_cnn(), kFlat);
  for (size_t i = 0; i < kFlat; ++i) g.data()[i] = 1000.0f;
  plain->clip_grad_norm(g);
  EXPECT_FALSE(plain->last_grad_norm().has_value());
  EXPECT_EQ(g.data()[5], 1000.0f);
  Tensor wrong({kFlat - 1});
  EXPECT_THROW(clipping->clip_grad_norm(wrong), ShapeError);
}

TEST(OptimizerRangesConfig, UnknownExclusionsListTheKnownOnes) {
  std::string message = config_error("  type: sgd\n  lr: 0.1\n  weight_decay_exclude: [bias, weights]\n");
  EXPECT_NE(message.find("run.yaml:4: key 'optimizer.weight_decay_exclude'"), std::string::npos) << message;
  EXPECT_NE(message.find("'weights'"), std::string::npos) << message;
  EXPECT_NE(message.find("bias, norm"), std::string::npos) << message;
  message = config_error("  type: adam\n  lr: 0.1\n  weight_decay_exclude: [[bias]]\n");
  EXPECT_NE(message.find("'optimizer.weight_decay_exclude'"), std::string::npos) << message;
  EXPECT_NE(message.find("expected a list of strings"), std::string::npos) << message;
}

TEST(OptimizerRangesConfig, ClipGradNormMustBePositive) {
  for (const char* value : {"0", "-1", "big", "[1]"}) {
    const std::string message = config_error(std::string("  type: sgd\n  lr: 0.1\n  clip_grad_norm: ") + value + "\n");
    EXPECT_NE(message.find("run.yaml:4: key 'optimizer.clip_grad_norm'"), std::string::npos)
        << value << ": " << message;
  }
}

TEST(OptimizerRangesConfig, DescribeNamesTheExclusions) {
  EXPECT_EQ(build("  type: sgd\n  lr: 0.1\n  momentum: 0.9\n  weight_decay: 0.0005\n  weight_decay_exclude: [norm, "
                  "bias, norm]\n  clip_grad_norm: 2.5\n",
                  small_cnn(), kFlat)
                ->describe(),
            "sgd (lr 0.1, momentum 0.9, weight_decay 0.0005 except norm, bias, clip_grad_norm 2.5)");
  EXPECT_EQ(build("  type: adam\n  lr: 0.001\n  weight_decay_exclude: bias\n", small_cnn(), kFlat)->describe(),
            "adam (lr 0.001, betas 0.9/0.999, eps 1e-08)");
}

}  // namespace
}  // namespace dptrain
