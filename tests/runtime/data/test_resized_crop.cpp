// Random resized crop: the bilinear window resize against hand-computed values, the window's draws
// against the configured ranges, and the augmentation's keyed, thread-independent results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/data/augment.h"
#include "runtime/data/epoch_plan.h"
#include "runtime/data/resized_crop.h"
#include "runtime/data/synthetic_dataset.h"
#include "tests/runtime/data/load_epoch.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

Rng sample_rng(uint64_t seed, uint64_t epoch, uint64_t index) {
  return Rng(hash_key(seed, static_cast<uint64_t>(RngStream::Augment), epoch, index));
}

TEST(ResizeWindowBilinear, TwoByTwoToFourByFourAsPyTorch) {
  // F.interpolate([[0, 1], [2, 3]], size=(4, 4), mode="bilinear", align_corners=False), taken from the
  // 4x4 plane's window at (1, 1).
  const std::vector<float> plane = {9, 9, 9, 9,  //
                                    9, 0, 1, 9,  //
                                    9, 2, 3, 9,  //
                                    9, 9, 9, 9};
  std::vector<float> out(16);
  resize_window_bilinear(plane.data(), 4, 4, CropWindow{1, 1, 2, 2}, out.data(), 4, 4);
  const std::vector<float> expected = {0.0f, 0.25f, 0.75f, 1.0f,  //
                                       0.5f, 0.75f, 1.25f, 1.5f,  //
                                       1.5f, 1.75f, 2.25f, 2.5f,  //
                                       2.0f, 2.25f, 2.75f, 3.0f};
  for (size_t i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(out[i], expected[i]) << i;
}

TEST(ResizeWindowBilinear, WholeWindowIsACopyAndNonSquareScales) {
  std::vector<float> plane(12);
  for (size_t i = 0; i < 12; ++i) plane[i] = static_cast<float>(i * i);
  std::vector<float> out(12);
  resize_window_bilinear(plane.data(), 3, 4, CropWindow{0, 0, 3, 4}, out.data(), 3, 4);
  EXPECT_EQ(out, plane);
  // One row of 2 to 1 x 6: source x = (i + 0.5) / 3 - 0.5 = -1/3, 0, 1/3, 2/3, 1, 4/3, clamped to [0, 1].
  const std::vector<float> row = {3.0f, 6.0f};
  std::vector<float> wide(6);
  resize_window_bilinear(row.data(), 1, 2, CropWindow{0, 0, 1, 2}, wide.data(), 1, 6);
  const std::vector<float> expected = {3.0f, 3.0f, 4.0f, 5.0f, 6.0f, 6.0f};
  for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(wide[i], expected[i]) << i;
  EXPECT_THROW(resize_window_bilinear(plane.data(), 3, 4, CropWindow{1, 0, 3, 4}, out.data(), 3, 4), ShapeError);
}

TEST(DrawResizedCrop, SquareCropsSpanTheScaleRangeAndEveryOffset) {
  ResizedCropRange range;
  range.scale_min = 0.25;
  range.scale_max = 0.36;
  range.ratio_min = range.ratio_max = 1.0;
  std::set<size_t> sides, rows;
  for (uint64_t i = 0; i < 2000; ++i) {
    Rng rng(hash_key(3, i));
    const CropWindow w = draw_resized_crop(rng, 100, 100, range);
    ASSERT_EQ(w.height, w.width) << i;
    ASSERT_GE(w.height, 50u) << i;  // area fraction w^2 / 100^2 in [0.25, 0.36]
    ASSERT_LE(w.height, 60u) << i;
    ASSERT_LE(w.y + w.height, 100u);
    ASSERT_LE(w.x + w.width, 100u);
    sides.insert(w.height);
    rows.insert(w.y);
  }
  EXPECT_EQ(sides.size(), 11u);  // 50 .. 60 all occur
  EXPECT_EQ(rows.size(), 51u);   // row offsets 0 .. 50 all occur
}

TEST(DrawResizedCrop, DefaultRangesKeepAreaAndAspectInBounds) {
  const ResizedCropRange range;  // scale [0.08, 1], ratio [3/4, 4/3]
  double smallest = 1.0, largest = 0.0;
  for (uint64_t i = 0; i < 5000; ++i) {
    Rng rng(hash_key(8, i));
    const CropWindow w = draw_resized_crop(rng, 120, 90, range);
    ASSERT_LE(w.y + w.height, 120u);
    ASSERT_LE(w.x + w.width, 90u);
    const double fraction = static_cast<double>(w.height * w.width) / (120.0 * 90.0);
    const double ratio = static_cast<double>(w.width) / static_cast<double>(w.height);
    // Rounding each side to whole pixels moves the area and ratio by a few percent at most here.
    ASSERT_GE(fraction, 0.08 * 0.93) << i;
    ASSERT_LE(fraction, 1.0) << i;
    ASSERT_GE(ratio, 0.75 * 0.95) << i;
    ASSERT_LE(ratio, 4.0 / 3.0 * 1.05) << i;
    smallest = std::min(smallest, fraction);
    largest = std::max(largest, fraction);
  }
  EXPECT_LT(smallest, 0.1);
  EXPECT_GT(largest, 0.9);
}

TEST(DrawResizedCrop, FallsBackToTheCentreWhenNoTryFits) {
  // Every try asks for the whole area at ratio >= 2, wider than the 10 x 10 plane: the fallback narrows
  // the plane to ratio 2 (h = round(10 / 2) = 5) and centres it, after drawing 2 numbers per try.
  ResizedCropRange range;
  range.scale_min = range.scale_max = 1.0;
  range.ratio_min = 2.0;
  range.ratio_max = 3.0;
  Rng rng(hash_key(1));
  const CropWindow w = draw_resized_crop(rng, 10, 10, range);
  EXPECT_EQ(w.y, 2u);
  EXPECT_EQ(w.x, 0u);
  EXPECT_EQ(w.height, 5u);
  EXPECT_EQ(w.width, 10u);
  Rng counted(hash_key(1));
  for (int i = 0; i < 20; ++i) counted.next_u64();
  EXPECT_EQ(rng.next_u64(), counted.next_u64());
  // A 20 x 10 plane asked for its whole area as a square: 14 x 14 never fits, so the fallback keeps the
  // width and cuts h = round(10 / 1) = 10 rows from the middle.
  range.ratio_min = range.ratio_max = 1.0;
  Rng again(hash_key(2));
  const CropWindow tall = draw_resized_crop(again, 20, 10, range);
  EXPECT_EQ(tall.y, 5u);
  EXPECT_EQ(tall.x, 0u);
  EXPECT_EQ(tall.height, 10u);
  EXPECT_EQ(tall.width, 10u);
}

// Sample value c * 1000 + y * 10 + x, every position distinct.
std::vector<float> known_sample(size_t c, size_t h, size_t w) {
  std::vector<float> s(c * h * w);
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<float>((i / (h * w)) * 1000 + ((i / w) % h) * 10 + i % w);
  }
  return s;
}

TEST(RandomResizedCropAugment, FollowsTheDocumentedDrawsThenTheFlip) {
  AugmentOptions options;
  options.resized_crop = ResizedCropRange{};
  options.flip = HorizontalFlip::Yes;
  const Augmentation augment(options);
  const size_t c = 2, h = 12, w = 10, plane = h * w;
  const Shape shape{c, h, w};
  std::vector<float> scratch(c * plane);
  std::set<std::vector<size_t>> windows;
  size_t flipped = 0;
  for (uint64_t i = 0; i < 100; ++i) {
    const std::vector<float> original = known_sample(c, h, w);
    std::vector<float> s = original;
    augment.apply(s.data(), shape, 4, 1, i, scratch.data());

    Rng rng = sample_rng(4, 1, i);
    const CropWindow window = draw_resized_crop(rng, h, w, *options.resized_crop);
    windows.insert({window.y, window.x, window.height, window.width});
    std::vector<float> expected(c * plane);
    for (size_t k = 0; k < c; ++k) {
      resize_window_bilinear(original.data() + k * plane, h, w, window, expected.data() + k * plane, h, w);
    }
    if (rng.below(2) == 1) {
      ++flipped;
      for (size_t row = 0; row < c * h; ++row)
        std::reverse(expected.begin() + row * w, expected.begin() + (row + 1) * w);
    }
    ASSERT_EQ(s, expected) << "sample " << i;
  }
  EXPECT_GT(windows.size(), 80u);  // different samples get different crops
  EXPECT_GT(flipped, 30u);
  EXPECT_LT(flipped, 70u);
}

TEST(RandomResizedCropAugment, SameKeySameCropOtherEpochOrSeedAnother) {
  AugmentOptions options;
  options.resized_crop = ResizedCropRange{};
  const Augmentation augment(options);
  const Shape shape{1, 16, 16};
  std::vector<float> scratch(256);
  auto run = [&](uint64_t seed, uint64_t epoch, uint64_t index) {
    std::vector<float> s = known_sample(1, 16, 16);
    augment.apply(s.data(), shape, seed, epoch, index, scratch.data());
    return s;
  };
  EXPECT_EQ(run(1, 2, 3), run(1, 2, 3));
  size_t epoch_differs = 0, seed_differs = 0, index_differs = 0;
  for (uint64_t i = 0; i < 20; ++i) {
    epoch_differs += run(1, 2, i) != run(1, 3, i);
    seed_differs += run(1, 2, i) != run(9, 2, i);
    index_differs += run(1, 2, i) != run(1, 2, i + 100);
  }
  EXPECT_GT(epoch_differs, 15u);
  EXPECT_GT(seed_differs, 15u);
  EXPECT_GT(index_differs, 15u);
}

TEST(RandomResizedCropAugment, SameResultWhateverTheWorkersAndThreads) {
  SyntheticSpec spec;
  spec.num_samples = 70;
  spec.sample_shape = {3, 12, 12};
  spec.num_classes = 3;
  spec.mean = {0.5f};
  spec.std = {0.25f};
  const SyntheticDataset data(spec, 4, SyntheticSplit::Train);
  AugmentOptions options;
  options.resized_crop = ResizedCropRange{};
  options.flip = HorizontalFlip::Yes;
  options.color_jitter = ColorJitterRange{{0.6, 0.6, 0.6}, {1.4, 1.4, 1.4}};
  options.mean = {0.5f};
  options.std = {0.25f};
  const Augmentation augment(options);
  const EpochPlan plan(data.size(), 16, 11, 2, DropLast::No, Shuffle::Yes);
  const auto one = testing::load_epoch(data, augment, plan, 2, 1, 1);
  ASSERT_EQ(one.size(), 70u);
  EXPECT_EQ(testing::load_epoch(data, augment, plan, 2, 2, 1), one);
  EXPECT_EQ(testing::load_epoch(data, augment, plan, 2, 3, 3), one);
  std::vector<float> x(432), scratch(432);
  int32_t label;
  data.get(17, x.data(), &label);
  EXPECT_NE(one.at(17), x);  // it did augment
  augment.apply(x.data(), data.sample_shape(), 11, 2, 17, scratch.data());
  EXPECT_EQ(one.at(17), x);
}

}  // namespace
}  // namespace dptrain
