// data.augment's random_resized_crop and color_jitter keys: what they build, what describe() says,
// and the ConfigError of every bad range, naming the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/data/augment.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::error_of;
using ::testing::HasSubstr;

std::shared_ptr<const Augmentation> from_yaml(const std::string& augment_yaml, size_t channels = 3) {
  ConfigMap top = ConfigMap::parse("data:\n  augment:\n" + augment_yaml, "run.yaml");
  ConfigMap data = top.get_map("data");
  ConfigMap augment = data.get_map("augment");
  return make_augmentation(augment, channels, {0.5f}, {0.25f});
}

std::string config_error(const std::string& augment_yaml, size_t channels = 3) {
  return error_of<ConfigError>([&] { from_yaml(augment_yaml, channels); });
}

TEST(AugmentConfig, RandomResizedCropDefaultsAndRanges) {
  auto a = from_yaml("    random_resized_crop: {}\n");
  ASSERT_TRUE(a && a->resized_crop());
  EXPECT_DOUBLE_EQ(a->resized_crop()->scale_min, 0.08);
  EXPECT_DOUBLE_EQ(a->resized_crop()->scale_max, 1.0);
  EXPECT_DOUBLE_EQ(a->resized_crop()->ratio_min, 0.75);
  EXPECT_DOUBLE_EQ(a->resized_crop()->ratio_max, 4.0 / 3.0);
  EXPECT_FALSE(a->color_jitter());
  a = from_yaml("    random_resized_crop: {scale: [0.25, 0.5], ratio: [0.5, 2]}\n    horizontal_flip: true\n");
  EXPECT_EQ(a->describe(),
            "random resized crop (scale [0.25, 0.5], ratio [0.5, 2], of the sample at data.shape) + horizontal flip");
}

TEST(AugmentConfig, ColorJitterReadsLikeTorchvision) {
  auto a = from_yaml("    color_jitter: {brightness: 0.4, contrast: [0.5, 2], saturation: 1.5}\n");
  ASSERT_TRUE(a && a->color_jitter());
  const ColorJitterRange& j = *a->color_jitter();
  EXPECT_DOUBLE_EQ(j.min[0], 0.6);
  EXPECT_DOUBLE_EQ(j.max[0], 1.4);
  EXPECT_DOUBLE_EQ(j.min[1], 0.5);
  EXPECT_DOUBLE_EQ(j.max[1], 2.0);
  EXPECT_DOUBLE_EQ(j.min[2], 0.0);  // max(0, 1 - 1.5)
  EXPECT_DOUBLE_EQ(j.max[2], 2.5);
  EXPECT_EQ(a->describe(),
            "colour jitter (brightness [0.6, 1.4], contrast [0.5, 2], saturation [0, 2.5], in random order)");
  // Zero amounts switch an adjustment off; all off is no augmentation at all.
  EXPECT_EQ(from_yaml("    color_jitter: {brightness: 0, saturation: 0}\n"), nullptr);
  a = from_yaml("    color_jitter: {brightness: 0.2, saturation: 0}\n", 1);  // saturation 0 is fine on grey
  ASSERT_TRUE(a);
  EXPECT_EQ(a->describe(), "colour jitter (brightness [0.8, 1.2], in random order)");
  // Everything at once, in the order applied.
  a = from_yaml(
      "    random_resized_crop: {}\n    crop_padding: 2\n    horizontal_flip: true\n"
      "    color_jitter: {contrast: 0.1}\n");
  EXPECT_THAT(a->describe(), HasSubstr("random resized crop (scale [0.08, 1], ratio [0.75, 1.33333], of the sample "
                                       "at data.shape) + random crop (padding 2, "));
  EXPECT_THAT(a->describe(), HasSubstr(") + horizontal flip + colour jitter (contrast [0.9, 1.1], in random order)"));
}

TEST(AugmentConfig, BadRangesNameTheKey) {
  EXPECT_THAT(config_error("    random_resized_crop: {scale: [0, 1]}\n"),
              HasSubstr("run.yaml:3: key 'data.augment.random_resized_crop.scale': is the crop's area as a fraction of "
                        "the image and must lie in (0, 1], got [0, 1]"));
  EXPECT_THAT(config_error("    random_resized_crop: {scale: [0.5, 1.5]}\n"),
              HasSubstr("key 'data.augment.random_resized_crop.scale': is the crop's area"));
  EXPECT_THAT(config_error("    random_resized_crop: {scale: [0.9, 0.2]}\n"),
              HasSubstr("key 'data.augment.random_resized_crop.scale': needs finite numbers [min, max] with min <= "
                        "max, got [0.9, 0.2]"));
  EXPECT_THAT(config_error("    random_resized_crop: {scale: 0.5}\n"),
              HasSubstr("key 'data.augment.random_resized_crop.scale': needs two numbers [min, max], got 1"));
  EXPECT_THAT(config_error("    random_resized_crop: {ratio: [-1, 2]}\n"),
              HasSubstr("key 'data.augment.random_resized_crop.ratio': is the crop's width / height and must be > 0"));
  EXPECT_THAT(config_error("    random_resized_crop: {size: 224}\n"),
              HasSubstr("key 'data.augment.random_resized_crop.size': unknown key"));
  EXPECT_THAT(config_error("    random_resized_crop: true\n"),
              HasSubstr("key 'data.augment.random_resized_crop': expected a mapping"));
  EXPECT_THAT(config_error("    color_jitter: {brightness: -0.1}\n"),
              HasSubstr("key 'data.augment.color_jitter.brightness': must be a number >= 0"));
  EXPECT_THAT(
      config_error("    color_jitter: {contrast: [1.2, 0.8]}\n"),
      HasSubstr("key 'data.augment.color_jitter.contrast': as [min, max] needs 0 <= min <= max, got [1.2, 0.8]"));
  EXPECT_THAT(config_error("    color_jitter: {contrast: [0.1, 0.2, 0.3]}\n"),
              HasSubstr("key 'data.augment.color_jitter.contrast': needs one number b"));
  EXPECT_THAT(
      config_error("    color_jitter: {hue: 0.1}\n"),
      HasSubstr(
          "key 'data.augment.color_jitter.hue': unknown key (known keys here: brightness, contrast, saturation)"));
  EXPECT_THAT(config_error("    color_jitter: {saturation: 0.4}\n", 1),
              HasSubstr("run.yaml:3: key 'data.augment.color_jitter.saturation': needs RGB samples, but they have 1 "
                        "channel(s); remove the key, or set data.shape to [3, H, W]"));
  EXPECT_THAT(config_error("    colour_jitter: {}\n"),
              HasSubstr("key 'data.augment.colour_jitter': unknown key (known keys here: color_jitter, crop_padding, "
                        "horizontal_flip, random_resized_crop)"));
}

}  // namespace
}  // namespace dptrain
