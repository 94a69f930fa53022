// Image files for `dptrain predict`: finding them in folders, refusing what is not an image by name, and
// preparing them exactly as a run's evaluation prepares its test images (the same fitting and
// normalisation), for grey and RGB models of any input size.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/data/dataset.h"
#include "runtime/data/image_files_dataset.h"
#include "runtime/data/image_io.h"
#include "tests/runtime/data/test_idx_files.h"
#include "tests/runtime/data/test_image_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

namespace fs = std::filesystem;
using test_util::error_of;
using ::testing::ElementsAre;
using testing::FolderRecipe;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_image_folder;

// An image of one colour.
Image solid(size_t width, size_t height, std::vector<uint8_t> colour) {
  Image image{width, height, colour.size(), {}};
  for (size_t p = 0; p < width * height; ++p) image.pixels.insert(image.pixels.end(), colour.begin(), colour.end());
  return image;
}

void write_png(const fs::path& path, const Image& image) {
  fs::create_directories(path.parent_path());
  write_file_bytes(path.string(), encode_png(image));
}

TEST(ImageFiles, FoldersGiveTheirImagesSortedAndRecursivelyFilesAsGiven) {
  ScratchDir dir;
  const Image image = solid(4, 4, {10, 20, 30});
  const fs::path root = dir.path() / "in";
  write_png(root / "b.png", image);
  write_png(root / "a" / "c.jpeg", image);  // a PNG under a JPEG name: the bytes decide
  write_png(root / "a" / "Z.PNG", image);
  write_png(root / ".hidden" / "x.png", image);
  write_png(root / ".y.png", image);
  write_file_bytes((root / "notes.txt").string(), {'h', 'i'});
  write_png(dir.path() / "single.bin", image);  // named on its own: taken whatever its name
  const std::vector<std::string> files = list_image_files({(dir.path() / "single.bin").string(), root.string()});
  EXPECT_THAT(files, ElementsAre((dir.path() / "single.bin").string(), (root / "a" / "Z.PNG").string(),
                                 (root / "a" / "c.jpeg").string(), (root / "b.png").string()));
}

TEST(ImageFiles, MissingPathsEmptyFoldersAndNonImagesAreNamed) {
  ScratchDir dir;
  const std::string missing = dir.file("nowhere.png");
  EXPECT_THAT(error_of<DataError>([&] { list_image_files({missing}); }),
              HasSubstr(missing + ": no such file or folder"));
  fs::create_directories(dir.path() / "empty" / "sub");
  write_file_bytes(dir.file("empty/sub/readme.txt"), {'x'});
  EXPECT_THAT(error_of<DataError>([&] { list_image_files({dir.file("empty")}); }),
              HasSubstr(dir.file("empty") + ": the folder holds no .png, .jpg or .jpeg files"));
  write_file_bytes(dir.file("notes.txt"), {'h', 'e', 'l', 'l', 'o'});
  EXPECT_THAT(error_of<DataError>([&] { list_image_files({dir.file("notes.txt")}); }),
              HasSubstr(dir.file("notes.txt") + ": not a PNG or JPEG file (it starts with bytes 68 65 6c 6c)"));
  // A text file under an image name inside a folder, too, before any image is decoded.
  write_png(dir.path() / "mixed" / "good.png", solid(2, 2, {1}));
  write_file_bytes(dir.file("mixed/bad.jpg"), {'n', 'o'});
  EXPECT_THAT(error_of<DataError>([&] { list_image_files({dir.file("mixed")}); }),
              HasSubstr(dir.file("mixed/bad.jpg") + ": not a PNG or JPEG file"));
}

// The data section of a run on the image folder `dir` whose test images are `test_dir`.
std::string folder_config(const std::string& dir, const std::string& test_dir, const std::string& extra) {
  return "data:\n  type: image_folder\n  dir: " + dir + "\n  test_dir: " + test_dir +
         "\n  shape: [3, 12, 12]\n  mean: [0.5, 0.4, 0.3]\n  std: [0.2, 0.25, 0.3]\n" + extra;
}

TEST(ImageFiles, SamplesAreTheRunsTestSamplesBitForBit) {
  ScratchDir dir;
  FolderRecipe recipe;
  recipe.classes = 2;
  recipe.per_class = 6;
  recipe.size = 16;
  recipe.jpeg_every = 3;
  recipe.grey_every = 4;
  recipe.resize_every = 5;
  const std::vector<std::string> paths = write_image_folder(dir.path() / "test", recipe);
  write_image_folder(dir.path() / "train", recipe);
  for (const std::string extra : {"", "  eval_resize: 14\n", "  resize: stretch\n"}) {
    SCOPED_TRACE(extra);
    const std::string yaml = folder_config(dir.file("train"), dir.file("test"), extra);
    ConfigMap top = ConfigMap::parse(yaml, "run.yaml");
    ConfigMap data = top.get_map("data");
    const DataSplits run = make_datasets(data, 1);
    ConfigMap top_again = ConfigMap::parse(yaml, "run.yaml");
    ConfigMap again = top_again.get_map("data");
    const ImageFilesDataset files(list_image_files({dir.file("test")}), eval_image_preparation(again, 1, {3, 12, 12}));
    ASSERT_EQ(files.size(), run.test->size());
    ASSERT_EQ(files.sample_shape(), run.test->sample_shape());
    std::vector<float> a(3 * 12 * 12), b(a.size());
    for (size_t i = 0; i < files.size(); ++i) {
      int32_t label = -1, unused = -1;
      files.get(i, a.data(), &unused);
      run.test->get(i, b.data(), &label);
      EXPECT_EQ(files.path(i), paths[i]);
      EXPECT_EQ(a, b) << files.path(i);
    }
  }
}

TEST(ImageFiles, ChannelsAndSizeFollowTheModelsInput) {
  ScratchDir dir;
  write_png(dir.path() / "rgb.png", solid(40, 30, {200, 100, 50}));
  write_png(dir.path() / "grey.png", solid(5, 7, {77}));
  ImagePreparation grey_model;
  grey_model.fit.shape = {1, 28, 28};  // Fashion-MNIST's
  grey_model.mean = {0.0f};
  grey_model.std = {1.0f};
  const ImageFilesDataset grey({dir.file("rgb.png")}, grey_model);
  std::vector<float> out(28 * 28);
  int32_t label = -1;
  grey.get(0, out.data(), &label);
  const float luma = std::round(0.299f * 200 + 0.587f * 100 + 0.114f * 50) / 255.0f;  // ITU-R BT.601
  for (float v : out) ASSERT_NEAR(v, luma, 1e-6f);

  ImagePreparation rgb_model;
  rgb_model.fit.shape = {3, 9, 6};
  rgb_model.mean = {0.5f};
  rgb_model.std = {0.25f};
  const ImageFilesDataset rgb({dir.file("grey.png")}, rgb_model);
  out.assign(3 * 9 * 6, 0.0f);
  rgb.get(0, out.data(), &label);
  for (float v : out) ASSERT_NEAR(v, (77.0f / 255.0f - 0.5f) / 0.25f, 1e-5f);
}

TEST(ImageFiles, InputsThatImagesCannotBecomeAreRefused) {
  ImagePreparation p;
  p.mean = {0.0f};
  p.std = {1.0f};
  p.fit.shape = {2, 8, 8};
  EXPECT_THAT(error_of<DataError>([&] { ImageFilesDataset files({}, p); }),
              HasSubstr("the model takes inputs of (2, 8, 8) (C, H, W): PNG and JPEG images give 1 (grey) or 3 "
                        "(RGB) channels, and cannot be converted to 2"));
  p.fit.shape = {10};
  EXPECT_THAT(error_of<DataError>([&] { ImageFilesDataset files({}, p); }), HasSubstr("not images of (C, H, W)"));
}

TEST(ImageFiles, EvalPreparationOfEachDataType) {
  ConfigMap idx_top =
      ConfigMap::parse("data:\n  type: idx\n  dir: /nowhere\n  mean: [0.28]\n  std: [0.35]\n", "r.yaml");
  ConfigMap idx = idx_top.get_map("data");
  const ImagePreparation a = eval_image_preparation(idx, 1, {1, 28, 28});  // the files are not needed
  EXPECT_EQ(a.fit.shape, (Shape{1, 28, 28}));
  EXPECT_EQ(a.fit.resize, ResizeMode::Crop);
  EXPECT_EQ(a.fit.shorter_side, 0u);
  EXPECT_THAT(a.mean, ElementsAre(0.28f));
  EXPECT_THAT(a.std, ElementsAre(0.35f));

  ConfigMap synthetic_top = ConfigMap::parse("data:\n  type: synthetic\n  shape: [3, 8, 10]\n", "r.yaml");
  ConfigMap synthetic = synthetic_top.get_map("data");
  EXPECT_EQ(eval_image_preparation(synthetic, 1, {}).fit.shape, (Shape{3, 8, 10}));

  const std::string folder =
      "data:\n  type: image_folder\n  dir: /nowhere\n  shape: [3, 32, 32]\n  eval_resize: 36\n  resize: crop\n";
  ConfigMap folder_top = ConfigMap::parse(folder, "r.yaml");
  ConfigMap image_folder = folder_top.get_map("data");
  const ImagePreparation c = eval_image_preparation(image_folder, 1, {3, 32, 32});
  EXPECT_EQ(c.fit.shape, (Shape{3, 32, 32}));
  EXPECT_EQ(c.fit.shorter_side, 36u);
  ConfigMap other_top = ConfigMap::parse(folder, "r.yaml");
  ConfigMap other = other_top.get_map("data");
  EXPECT_THAT(error_of<ConfigError>([&] {
                eval_image_preparation(other, 1, {3, 64, 64});
              }),
              HasSubstr("is (3, 32, 32), but the model takes inputs of (3, 64, 64)"));
}

}  // namespace DPTRAIN_TEST_UNIT
}  // namespace dptrain
