// Colour jitter: each adjustment against hand-computed values, the draws against their ranges, the
// range of the output, and the un-normalise / re-normalise round trip inside Augmentation.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/data/augment.h"
#include "runtime/data/color_jitter.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

ColorJitterDraw only(ColorOp op, float factor) {
  ColorJitterDraw d;
  d.factor[static_cast<size_t>(op)] = factor;
  return d;
}

// Two RGB pixels, (C, 2): pixel 0 = (0.2, 0.4, 0.6), pixel 1 = (1.0, 0.5, 0.0).
std::vector<float> two_pixels() { return {0.2f, 1.0f, 0.4f, 0.5f, 0.6f, 0.0f}; }

TEST(ColorJitter, FactorOneIsTheIdentity) {
  std::vector<float> values(3 * 50);
  Rng rng(7);
  for (float& v : values) v = rng.uniform();
  const std::vector<float> before = values;
  ColorJitterDraw d;
  d.order = {ColorOp::Saturation, ColorOp::Brightness, ColorOp::Contrast};
  apply_color_jitter(values.data(), 3, 50, d);  // every factor 1
  EXPECT_EQ(values, before);
}

TEST(ColorJitter, EachAdjustmentByHand) {
  // Brightness 1.5 scales and clamps: 1.0 * 1.5 -> 1.
  std::vector<float> v = two_pixels();
  apply_color_jitter(v.data(), 3, 2, only(ColorOp::Brightness, 1.5f));
  const std::vector<float> bright = {0.3f, 1.0f, 0.6f, 0.75f, 0.9f, 0.0f};
  for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(v[i], bright[i]) << i;

  // Greys: pixel 0: 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6 = 0.363; pixel 1: 0.299 + 0.2935 = 0.5925.
  // Contrast 0.5 blends every value halfway to their mean, 0.47775.
  v = two_pixels();
  apply_color_jitter(v.data(), 3, 2, only(ColorOp::Contrast, 0.5f));
  const float m = 0.47775f;
  const std::vector<float> contrast = {0.5f * 0.2f + 0.5f * m, 0.5f * 1.0f + 0.5f * m, 0.5f * 0.4f + 0.5f * m,
                                       0.5f * 0.5f + 0.5f * m, 0.5f * 0.6f + 0.5f * m, 0.5f * m};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(v[i], contrast[i], 1e-6f) << i;

  // Saturation 0 makes each pixel its grey; saturation 2 doubles its distance from it, clamped.
  v = two_pixels();
  apply_color_jitter(v.data(), 3, 2, only(ColorOp::Saturation, 0.0f));
  const std::vector<float> grey = {0.363f, 0.5925f, 0.363f, 0.5925f, 0.363f, 0.5925f};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(v[i], grey[i], 1e-6f) << i;
  v = two_pixels();
  apply_color_jitter(v.data(), 3, 2, only(ColorOp::Saturation, 2.0f));
  const std::vector<float> vivid = {2 * 0.2f - 0.363f, 1.0f, 2 * 0.4f - 0.363f, 2 * 0.5f - 0.5925f,
                                    2 * 0.6f - 0.363f, 0.0f};
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(v[i], vivid[i], 1e-6f) << i;

  // One channel: contrast blends with the channel's own mean; saturation is refused.
  std::vector<float> g = {0.0f, 1.0f};
  apply_color_jitter(g.data(), 1, 2, only(ColorOp::Contrast, 0.0f));
  EXPECT_FLOAT_EQ(g[0], 0.5f);
  EXPECT_FLOAT_EQ(g[1], 0.5f);
  EXPECT_THROW(apply_color_jitter(g.data(), 1, 2, only(ColorOp::Saturation, 0.5f)), ShapeError);
}

TEST(ColorJitter, OrderMatters) {
  // Brightness 2 then contrast 0 gives the brightened, clamped image's mean; the other order gives 2 x mean.
  ColorJitterDraw d;
  d.factor = {2.0f, 0.0f, 1.0f};
  std::vector<float> first = {0.2f, 0.8f};
  d.order = {ColorOp::Brightness, ColorOp::Contrast, ColorOp::Saturation};
  apply_color_jitter(first.data(), 1, 2, d);
  EXPECT_FLOAT_EQ(first[0], 0.7f);  // mean of (0.4, 1.0)
  std::vector<float> second = {0.2f, 0.8f};
  d.order = {ColorOp::Contrast, ColorOp::Brightness, ColorOp::Saturation};
  apply_color_jitter(second.data(), 1, 2, d);
  EXPECT_FLOAT_EQ(second[0], 1.0f);  // 2 x 0.5
}

TEST(ColorJitter, DrawsStayInTheirRangesAndEveryOrderOccurs) {
  ColorJitterRange range;
  range.min = {0.6, 1.0, 0.0};
  range.max = {1.4, 1.0, 2.0};  // contrast off
  std::set<std::array<ColorOp, 3>> orders;
  float lowest = 10.0f, highest = -1.0f;
  for (uint64_t i = 0; i < 3000; ++i) {
    Rng rng(hash_key(5, i));
    const ColorJitterDraw d = draw_color_jitter(rng, range);
    orders.insert(d.order);
    ASSERT_GE(d.factor[0], 0.6f);
    ASSERT_LE(d.factor[0], 1.4f);
    ASSERT_EQ(d.factor[1], 1.0f);
    ASSERT_GE(d.factor[2], 0.0f);
    ASSERT_LE(d.factor[2], 2.0f);
    lowest = std::min(lowest, d.factor[0]);
    highest = std::max(highest, d.factor[0]);
    // The documented draw order: the permutation, then brightness, then saturation (contrast draws nothing).
    Rng again(hash_key(5, i));
    again.below(3);
    again.below(2);
    const float b = static_cast<float>(range.min[0] + (range.max[0] - range.min[0]) * double{again.uniform()});
    const float s = static_cast<float>(range.min[2] + (range.max[2] - range.min[2]) * double{again.uniform()});
    ASSERT_EQ(d.factor[0], b);
    ASSERT_EQ(d.factor[2], s);
  }
  EXPECT_EQ(orders.size(), 6u);
  EXPECT_LT(lowest, 0.62f);
  EXPECT_GT(highest, 1.38f);
}

TEST(ColorJitterAugment, OutputStaysInRangeAfterRenormalising) {
  AugmentOptions options;
  options.color_jitter = ColorJitterRange{{0.0, 0.0, 0.0}, {3.0, 3.0, 3.0}};
  options.mean = {0.485f, 0.456f, 0.406f};
  options.std = {0.229f, 0.224f, 0.225f};
  const Augmentation augment(options);
  const Shape shape{3, 4, 4};
  std::vector<float> scratch(48);
  size_t changed = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    Rng rng(hash_key(1, i));
    std::vector<float> s(48);
    for (size_t k = 0; k < 48; ++k) s[k] = (rng.uniform() - options.mean[k / 16]) / options.std[k / 16];
    const std::vector<float> before = s;
    augment.apply(s.data(), shape, 2, 0, i, scratch.data());
    changed += s != before;
    for (size_t k = 0; k < 48; ++k) {
      const float raw = s[k] * options.std[k / 16] + options.mean[k / 16];
      ASSERT_GE(raw, -1e-6f) << i << " " << k;
      ASSERT_LE(raw, 1.0f + 1e-6f) << i << " " << k;
    }
  }
  EXPECT_EQ(changed, 200u);
}

TEST(ColorJitterAugment, MatchesTheDocumentedDrawOnRawPixels) {
  AugmentOptions options;
  options.color_jitter = ColorJitterRange{{0.5, 0.5, 0.5}, {1.5, 1.5, 1.5}};
  options.mean = {0.5f};
  options.std = {0.5f};
  const Augmentation augment(options);
  const Shape shape{3, 2, 3};
  std::vector<float> scratch(18);
  for (uint64_t i = 0; i < 30; ++i) {
    std::vector<float> raw(18);
    for (size_t k = 0; k < 18; ++k) raw[k] = static_cast<float>((k * 7 + i) % 11) / 10.0f;
    std::vector<float> s(18);
    for (size_t k = 0; k < 18; ++k) s[k] = (raw[k] - 0.5f) / 0.5f;
    augment.apply(s.data(), shape, 3, 4, i, scratch.data());
    Rng rng(hash_key(3, static_cast<uint64_t>(RngStream::Augment), 4, i));
    apply_color_jitter(raw.data(), 3, 6, draw_color_jitter(rng, *options.color_jitter));
    for (size_t k = 0; k < 18; ++k) ASSERT_NEAR(s[k] * 0.5f + 0.5f, raw[k], 1e-6f) << i << " " << k;
  }
}

}  // namespace
}  // namespace dptrain
