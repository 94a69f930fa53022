// data.eval_resize: Resize(shorter side) + CenterCrop by hand, on a generated image folder, and its
// config errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/data/dataset.h"
#include "runtime/data/image_folder_dataset.h"
#include "runtime/data/image_io.h"
#include "runtime/data/image_resize.h"
#include "tests/runtime/data/test_idx_files.h"
#include "tests/runtime/data/test_image_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::error_of;
using testing::FolderRecipe;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ScratchDir;
using testing::write_image_folder;

// A grey image whose pixel (y, x) is value(y, x).
template <typename F>
Image grey_image(size_t height, size_t width, F value) {
  Image image{width, height, 1, std::vector<uint8_t>(width * height)};
  for (size_t y = 0; y < height; ++y) {
    for (size_t x = 0; x < width; ++x) image.pixels[y * width + x] = static_cast<uint8_t>(value(y, x));
  }
  return image;
}

TEST(EvalResize, ShorterSideAtScaleOneCutsTheCentre) {
  // 6 x 8, shorter side 6: no scaling; the centre 4 x 4 starts at row 1, column 2.
  const Image image = grey_image(6, 8, [](size_t y, size_t x) { return 10 * y + x; });
  std::vector<uint8_t> out(16);
  fit_image(image, 1, 4, 4, ResizeMode::Crop, out.data(), 6);
  for (size_t y = 0; y < 4; ++y) {
    for (size_t x = 0; x < 4; ++x) EXPECT_EQ(out[y * 4 + x], 10 * (y + 1) + (x + 2)) << y << " " << x;
  }
  // Without a shorter side the whole height is kept: rows 0..5 scaled to 4, a different picture.
  std::vector<uint8_t> whole(16);
  fit_image(image, 1, 4, 4, ResizeMode::Crop, whole.data());
  EXPECT_NE(whole, out);
}

TEST(EvalResize, HalvingThenCropAveragesAsTheTriangleFilterDoes) {
  // 8 x 8 ramp 10 x + 20 y, shorter side 4 (scale 1/2), centre 2 x 2: the window is source rows and
  // columns [2, 6); output column i averages source columns 2i+1 .. 2i+4 with weights 1, 3, 3, 1 (/ 8),
  // i.e. samples the ramp at 2.5 + 2i. So out(y, x) = 10 (2.5 + 2x) + 20 (2.5 + 2y) = 75 + 20x + 40y.
  const Image image = grey_image(8, 8, [](size_t y, size_t x) { return 10 * x + 20 * y; });
  std::vector<uint8_t> out(4);
  fit_image(image, 1, 2, 2, ResizeMode::Crop, out.data(), 4);
  EXPECT_EQ(out, (std::vector<uint8_t>{75, 95, 115, 135}));
  // A shorter side equal to the crop of a same-sized image is a plain copy; a larger one is not.
  const Image small = grey_image(2, 2, [](size_t y, size_t x) { return 50 * y + 10 * x; });
  fit_image(small, 1, 2, 2, ResizeMode::Crop, out.data(), 2);
  EXPECT_EQ(out, small.pixels);
  fit_image(small, 1, 2, 2, ResizeMode::Crop, out.data(), 4);  // 4 x 4 upscale, centre 2 x 2
  EXPECT_NE(out, small.pixels);
  EXPECT_THROW(fit_image(small, 1, 2, 2, ResizeMode::Crop, out.data(), 1), ShapeError);
  EXPECT_THROW(fit_image(small, 1, 2, 2, ResizeMode::Stretch, out.data(), 4), ShapeError);
}

DataSplits build(const std::string& yaml, uint64_t seed = 1) {
  ConfigMap top = ConfigMap::parse(yaml, "run.yaml");
  ConfigMap data = top.get_map("data");
  DataSplits splits = make_datasets(data, seed);
  data.finish();
  return splits;
}

// Sample i of `set` as bytes (mean 0, std 1 gives pixel / 255).
std::vector<uint8_t> bytes_of(const Dataset& set, size_t i) {
  std::vector<float> x(num_elements(set.sample_shape()));
  int32_t label;
  set.get(i, x.data(), &label);
  std::vector<uint8_t> out(x.size());
  for (size_t k = 0; k < x.size(); ++k) out[k] = static_cast<uint8_t>(std::lround(x[k] * 255.0f));
  return out;
}

// What image `path` becomes with the given shorter side (0: data.resize crop) at 3 x 8 x 8.
std::vector<uint8_t> fitted(const std::string& path, size_t shorter_side) {
  std::vector<uint8_t> out(192);
  fit_image(read_image(path), 3, 8, 8, ResizeMode::Crop, out.data(), shorter_side);
  return out;
}

TEST(EvalResizeConfig, TestSetAlwaysTrainingSetUnlessRandomResizedCrop) {
  ScratchDir dir;
  FolderRecipe r;
  r.per_class = 5;
  r.size = 10;  // 10 x 10, and every other image 15 x 13
  r.resize_every = 2;
  write_image_folder(dir.path(), r);
  const std::string base = "data:\n  type: image_folder\n  dir: " + dir.path().string() +
                           "\n  shape: [3, 8, 8]\n  validation_fraction: 0.4\n  eval_resize: 9\n";

  DataSplits plain = build(base);
  const auto& train = static_cast<const ImageFolderDataset&>(*plain.train);
  const auto& test = static_cast<const ImageFolderDataset&>(*plain.test);
  EXPECT_EQ(train.size(), 12u);
  EXPECT_EQ(test.size(), 8u);
  EXPECT_THAT(test.describe(), HasSubstr("shorter side resized to 9, centre 8x8 cut out"));
  EXPECT_THAT(train.describe(), HasSubstr("shorter side resized to 9, centre 8x8 cut out"));
  for (size_t i = 0; i < test.size(); ++i) {
    EXPECT_EQ(bytes_of(test, i), fitted(test.folder().path(test.member(i)), 9)) << i;
  }
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(bytes_of(train, i), fitted(train.folder().path(train.member(i)), 9)) << i;
  }
  EXPECT_NE(fitted(train.folder().path(0), 9), fitted(train.folder().path(0), 0));

  // With a random resized crop, training images keep the whole picture (data.resize) for it to crop from.
  DataSplits rrc = build(base + "  augment: {random_resized_crop: {}}\n");
  const auto& rrc_train = static_cast<const ImageFolderDataset&>(*rrc.train);
  const auto& rrc_test = static_cast<const ImageFolderDataset&>(*rrc.test);
  EXPECT_THAT(rrc_train.describe(), HasSubstr("shorter side resized, centre-cropped to size"));
  EXPECT_THAT(rrc_test.describe(), HasSubstr("shorter side resized to 9"));
  ASSERT_EQ(rrc_test.size(), test.size());
  for (size_t i = 0; i < rrc_test.size(); ++i) {
    EXPECT_EQ(rrc_test.member(i), test.member(i));  // the same split
    EXPECT_EQ(bytes_of(rrc_test, i), bytes_of(test, i)) << i;
  }
  for (size_t i = 0; i < rrc_train.size(); ++i) {
    EXPECT_EQ(bytes_of(rrc_train, i), fitted(rrc_train.folder().path(rrc_train.member(i)), 0)) << i;
  }
  ASSERT_TRUE(rrc.train_augment && rrc.train_augment->resized_crop());
}

TEST(EvalResizeConfig, SeparateTestFolderAndErrors) {
  ScratchDir dir;
  FolderRecipe r;
  r.per_class = 2;
  r.size = 12;
  write_image_folder(dir.path() / "train", r);
  r.seed = 4;
  write_image_folder(dir.path() / "test", r);
  const std::string base = "data:\n  type: image_folder\n  dir: " + (dir.path() / "train").string() +
                           "\n  test_dir: " + (dir.path() / "test").string() + "\n  shape: [3, 8, 8]\n";
  DataSplits s = build(base + "  eval_resize: 10\n  augment:\n    random_resized_crop: {scale: [0.5, 1]}\n");
  const auto& test = static_cast<const ImageFolderDataset&>(*s.test);
  EXPECT_EQ(bytes_of(test, 3), fitted(test.folder().path(3), 10));
  EXPECT_THAT(s.train->describe(), Not(HasSubstr("resized to 10")));

  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  eval_resize: 7\n"); }),
              HasSubstr("run.yaml:6: key 'data.eval_resize': is the length the shorter side is resized to before "
                        "the centre 8x8 of data.shape is cut out, so it must be at least 8, got 7"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  resize: stretch\n  eval_resize: 9\n"); }),
              HasSubstr("key 'data.eval_resize': resizes the shorter side and cuts out the centre, which "
                        "contradicts data.resize: stretch"));
  EXPECT_THAT(error_of<ConfigError>([&] { build("data:\n  type: synthetic\n  shape: [3, 8, 8]\n  eval_resize: 9\n"); }),
              HasSubstr("key 'data.eval_resize': applies to data.type: image_folder only"));
}

}  // namespace
}  // namespace dptrain
