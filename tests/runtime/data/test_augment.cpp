// Augmentation: flip and crop against hand-built expectations, keyed randomness, config, and
// independence from how samples are split between workers and threads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/data/augment.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/dataset.h"
#include "runtime/data/epoch_plan.h"
#include "runtime/data/synthetic_dataset.h"
#include "tests/runtime/data/load_epoch.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using dptrain::testing::load_epoch;
using ::testing::HasSubstr;

// The draws Augmentation documents: dy, dx (when padding > 0), then the flip.
struct Draw {
  size_t dy, dx;
  bool flip;
};

Draw documented_draw(uint64_t seed, uint64_t epoch, uint64_t index, size_t padding, bool may_flip) {
  Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Augment), epoch, index));
  Draw d{padding, padding, false};
  if (padding > 0) {
    d.dy = rng.below(2 * padding + 1);
    d.dx = rng.below(2 * padding + 1);
  }
  if (may_flip) d.flip = rng.below(2) == 1;
  return d;
}

// Sample value c * 100 + y * 10 + x: every position distinct.
std::vector<float> known_sample(size_t c, size_t h, size_t w) {
  std::vector<float> s(c * h * w);
  for (size_t k = 0; k < c; ++k) {
    for (size_t y = 0; y < h; ++y) {
      for (size_t x = 0; x < w; ++x) s[(k * h + y) * w + x] = static_cast<float>(k * 100 + y * 10 + x);
    }
  }
  return s;
}

TEST(Augmentation, FlipMirrorsRowsAndLeavesTheRestAlone) {
  const Augmentation flip(0, HorizontalFlip::Yes, {0.0f});
  const Shape shape{2, 2, 3};
  std::vector<float> scratch(12);
  size_t flipped = 0, kept = 0;
  for (uint64_t i = 0; i < 64; ++i) {
    std::vector<float> s = known_sample(2, 2, 3);
    flip.apply(s.data(), shape, 5, 1, i, scratch.data());
    const Draw d = documented_draw(5, 1, i, 0, true);
    if (d.flip) {
      ++flipped;
      EXPECT_EQ(s, (std::vector<float>{2, 1, 0, 12, 11, 10, 102, 101, 100, 112, 111, 110})) << i;
    } else {
      ++kept;
      EXPECT_EQ(s, known_sample(2, 2, 3)) << i;
    }
  }
  EXPECT_GT(flipped, 16u);
  EXPECT_GT(kept, 16u);
}

TEST(Augmentation, CropIsAWindowOfThePaddedSample) {
  const size_t p = 2, h = 3, w = 4;
  const std::vector<float> fill = {-1.5f, -2.5f};
  const Augmentation crop(p, HorizontalFlip::Yes, fill);
  const Shape shape{2, h, w};
  std::vector<float> scratch(24);
  std::set<std::pair<size_t, size_t>> offsets;
  for (uint64_t i = 0; i < 300; ++i) {
    std::vector<float> s = known_sample(2, h, w);
    crop.apply(s.data(), shape, 3, 0, i, scratch.data());
    const Draw d = documented_draw(3, 0, i, p, true);
    offsets.insert({d.dy, d.dx});
    // Padded sample: (h + 2p) x (w + 2p), fill outside; output (y, x) = padded(y + dy, x' + dx).
    for (size_t c = 0; c < 2; ++c) {
      for (size_t y = 0; y < h; ++y) {
        for (size_t x = 0; x < w; ++x) {
          const size_t xs = d.flip ? w - 1 - x : x;
          const long py = long(y + d.dy) - long(p), px = long(xs + d.dx) - long(p);
          const bool inside = py >= 0 && py < long(h) && px >= 0 && px < long(w);
          const float expected = inside ? float(c * 100 + py * 10 + px) : fill[c];
          ASSERT_EQ(s[(c * h + y) * w + x], expected) << "index " << i << " c " << c << " y " << y << " x " << x;
        }
      }
    }
  }
  EXPECT_EQ(offsets.size(), (2 * p + 1) * (2 * p + 1));  // every offset occurs
}

TEST(Augmentation, KeyedBySeedEpochAndIndexOnly) {
  const Augmentation a(4, HorizontalFlip::Yes, {0.0f});
  const Shape shape{1, 8, 8};
  std::vector<float> scratch(64);
  auto run = [&](uint64_t seed, uint64_t epoch, uint64_t index) {
    std::vector<float> s = known_sample(1, 8, 8);
    a.apply(s.data(), shape, seed, epoch, index, scratch.data());
    return s;
  };
  EXPECT_EQ(run(1, 2, 3), run(1, 2, 3));
  size_t epoch_differs = 0, seed_differs = 0, index_differs = 0;
  for (uint64_t i = 0; i < 20; ++i) {
    epoch_differs += run(1, 2, i) != run(1, 3, i);
    seed_differs += run(1, 2, i) != run(9, 2, i);
    index_differs += run(1, 2, i) != run(1, 2, i + 100);
  }
  EXPECT_GT(epoch_differs, 10u);
  EXPECT_GT(seed_differs, 10u);
  EXPECT_GT(index_differs, 10u);
  std::vector<float> wrong(64);
  EXPECT_THROW(Augmentation(1, HorizontalFlip::No, {0.f, 1.f}).apply(wrong.data(), shape, 0, 0, 0, scratch.data()),
               ShapeError);
}

std::shared_ptr<const Augmentation> from_yaml(const std::string& yaml, size_t channels, std::vector<float> mean,
                                              std::vector<float> std) {
  ConfigMap top = ConfigMap::parse(yaml, "run.yaml");
  ConfigMap data = top.get_map("data");
  ConfigMap augment = data.get_map("augment");
  return make_augmentation(augment, channels, mean, std);
}

TEST(Augmentation, FromConfig) {
  EXPECT_EQ(from_yaml("data: {}\n", 3, {0.f}, {1.f}), nullptr);
  EXPECT_EQ(from_yaml("data:\n  augment: {crop_padding: 0, horizontal_flip: false}\n", 3, {0.f}, {1.f}), nullptr);
  auto a =
      from_yaml("data:\n  augment:\n    crop_padding: 4\n    horizontal_flip: true\n", 2, {0.5f, 0.25f}, {0.5f, 0.25f});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->crop_padding(), 4u);
  EXPECT_EQ(a->flip(), HorizontalFlip::Yes);
  EXPECT_EQ(a->describe(), "random crop (padding 4, padded with the normalised value of a 0 pixel) + horizontal flip");
  // The pad value is (0 - mean) / std per channel: find a sample whose crop shows padding in both channels.
  const Shape shape{2, 1, 1};
  std::vector<float> scratch(2);
  bool saw_padding = false;
  for (uint64_t i = 0; i < 50 && !saw_padding; ++i) {
    std::vector<float> s = {7.0f, 7.0f};
    a->apply(s.data(), shape, 0, 0, i, scratch.data());
    if (s[0] != 7.0f) {
      EXPECT_FLOAT_EQ(s[0], -1.0f);
      EXPECT_FLOAT_EQ(s[1], -1.0f);
      saw_padding = true;
    }
  }
  EXPECT_TRUE(saw_padding);
  try {
    from_yaml("data:\n  augment:\n    crop_padding: 4\n    mirror: true\n", 1, {0.f}, {1.f});
    ADD_FAILURE() << "unknown key accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("run.yaml:4: key 'data.augment.mirror': unknown key"));
    EXPECT_THAT(e.what(), HasSubstr("crop_padding, horizontal_flip"));
  }
  EXPECT_THROW(from_yaml("data:\n  augment: {crop_padding: -1}\n", 1, {0.f}, {1.f}), ConfigError);
  EXPECT_THROW(from_yaml("data:\n  augment: {horizontal_flip: maybe}\n", 1, {0.f}, {1.f}), ConfigError);
}

TEST(Augmentation, SameResultWhateverTheWorkersAndThreads) {
  SyntheticSpec spec;
  spec.num_samples = 90;
  spec.sample_shape = {3, 8, 8};
  spec.num_classes = 3;
  const SyntheticDataset data(spec, 4, SyntheticSplit::Train);
  const Augmentation augment(2, HorizontalFlip::Yes, {0.0f});
  const EpochPlan plan(data.size(), 16, 11, 2, DropLast::No, Shuffle::Yes);
  const auto one = load_epoch(data, augment, plan, 2, 1, 1);
  ASSERT_EQ(one.size(), 90u);
  EXPECT_EQ(load_epoch(data, augment, plan, 2, 2, 1), one);
  EXPECT_EQ(load_epoch(data, augment, plan, 2, 3, 1), one);
  EXPECT_EQ(load_epoch(data, augment, plan, 2, 3, 3), one);
  // ... and it did augment: the same samples of another epoch differ.
  const EpochPlan other(data.size(), 16, 11, 3, DropLast::No, Shuffle::Yes);
  EXPECT_NE(load_epoch(data, augment, other, 3, 1, 1), one);
  // Each sample is its own, augmented copy: equal to get() + apply() with the documented key.
  std::vector<float> x(192), scratch(192);
  int32_t label;
  data.get(17, x.data(), &label);
  augment.apply(x.data(), data.sample_shape(), 11, 2, 17, scratch.data());
  EXPECT_EQ(one.at(17), x);
}

}  // namespace
}  // namespace dptrain
