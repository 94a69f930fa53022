// Image decoding, fitting, image folders, their split, and the image_folder config keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
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

using testing::FolderRecipe;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::pattern_image;
using testing::raw_png;
using testing::ScratchDir;
using testing::write_image_folder;

using test_util::error_of;

Image gradient(size_t w, size_t h, size_t channels) {
  Image image{w, h, channels, std::vector<uint8_t>(w * h * channels)};
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>((i * 7 + i / 5) % 256);
  return image;
}

TEST(ImageIo, PngRoundTripIsExact) {
  ScratchDir dir;
  for (size_t channels : {1u, 3u}) {
    const Image image = gradient(13, 7, channels);
    const std::string path = dir.file("x" + std::to_string(channels) + ".png");
    write_file_bytes(path, encode_png(image));
    const Image back = read_image(path);
    EXPECT_EQ(back.width, 13u);
    EXPECT_EQ(back.height, 7u);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, image.pixels);
  }
}

TEST(ImageIo, JpegRoundTripIsClose) {
  const Image image = pattern_image(0, 40, 24, 3, 5, 0.0f);  // smooth stripes: JPEG keeps them well
  const std::vector<uint8_t> bytes = encode_jpeg(image, 95);
  EXPECT_EQ(detect_image_format(bytes.data(), bytes.size()), ImageFormat::Jpeg);
  const Image back = decode_image(bytes.data(), bytes.size(), "mem.jpg");
  ASSERT_EQ(back.width, 40u);
  ASSERT_EQ(back.height, 24u);
  ASSERT_EQ(back.channels, 3u);
  double error = 0;
  for (size_t i = 0; i < image.pixels.size(); ++i) error += std::abs(int(image.pixels[i]) - int(back.pixels[i]));
  EXPECT_LT(error / image.pixels.size(), 4.0);
  const Image grey = decode_image(encode_jpeg(pattern_image(1, 8, 8, 1, 2)).data(),
                                  encode_jpeg(pattern_image(1, 8, 8, 1, 2)).size(), "grey.jpg");
  EXPECT_EQ(grey.channels, 1u);
}

TEST(ImageIo, PngKindsAreConvertedTo8BitGreyOrRgb) {
  // RGBA: alpha dropped.
  const std::vector<uint8_t> rgba = {10, 20, 30, 0, 40, 50, 60, 255};
  Image a = decode_image(raw_png(2, 1, 8, 6, rgba, 8).data(), raw_png(2, 1, 8, 6, rgba, 8).size(), "rgba.png");
  EXPECT_EQ(a.channels, 3u);
  EXPECT_EQ(a.pixels, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60}));
  // 16-bit grey: the high byte is kept.
  const std::vector<uint8_t> grey16 = {0x12, 0x34, 0xab, 0xcd};
  Image g = decode_image(raw_png(2, 1, 16, 0, grey16, 4).data(), raw_png(2, 1, 16, 0, grey16, 4).size(), "g16.png");
  EXPECT_EQ(g.channels, 1u);
  EXPECT_EQ(g.pixels, (std::vector<uint8_t>{0x12, 0xab}));
  // Grey + alpha: grey.
  const std::vector<uint8_t> ga = {7, 1, 9, 2};
  Image h = decode_image(raw_png(2, 1, 8, 4, ga, 4).data(), raw_png(2, 1, 8, 4, ga, 4).size(), "ga.png");
  EXPECT_EQ(h.pixels, (std::vector<uint8_t>{7, 9}));
  // Palette: expanded to RGB.
  const std::vector<uint8_t> palette = {1, 2, 3, 200, 201, 202};
  const std::vector<uint8_t> indices = {1, 0, 1};
  const std::vector<uint8_t> p8 = raw_png(3, 1, 8, 3, indices, 3, palette);
  Image p = decode_image(p8.data(), p8.size(), "pal.png");
  EXPECT_EQ(p.channels, 3u);
  EXPECT_EQ(p.pixels, (std::vector<uint8_t>{200, 201, 202, 1, 2, 3, 200, 201, 202}));
  // 1-bit grey: expanded to 0 / 255.
  const std::vector<uint8_t> bits = {0xa0};  // 1 0 1 0 ...
  Image b = decode_image(raw_png(3, 1, 1, 0, bits, 1).data(), raw_png(3, 1, 1, 0, bits, 1).size(), "bits.png");
  EXPECT_EQ(b.pixels, (std::vector<uint8_t>{255, 0, 255}));
}

TEST(ImageIo, CorruptFilesNameThePathAndTheLibraryMessage) {
  ScratchDir dir;
  const std::vector<uint8_t> png = encode_png(gradient(32, 32, 3));
  // Truncated PNG.
  const std::string truncated = dir.file("truncated.png");
  write_file_bytes(truncated, std::vector<uint8_t>(png.begin(), png.begin() + png.size() / 2));
  std::string msg = error_of<DataError>([&] { read_image(truncated); });
  EXPECT_THAT(msg, HasSubstr(truncated + ": cannot decode PNG (libpng: "));
  // A flipped byte in the image data: the CRC check of libpng catches it.
  std::vector<uint8_t> damaged = png;
  damaged[damaged.size() - 20] ^= 0x55;
  msg = error_of<DataError>([&] { decode_image(damaged.data(), damaged.size(), "damaged.png"); });
  EXPECT_THAT(msg, HasSubstr("damaged.png: cannot decode PNG (libpng: "));
  // Garbage after a JPEG signature.
  std::vector<uint8_t> garbage = {0xff, 0xd8, 0xff};
  for (int i = 0; i < 200; ++i) garbage.push_back(static_cast<uint8_t>(i * 31));
  const std::string bad_jpeg = dir.file("garbage.jpg");
  write_file_bytes(bad_jpeg, garbage);
  msg = error_of<DataError>([&] { read_image(bad_jpeg); });
  EXPECT_THAT(msg, HasSubstr(bad_jpeg + ": cannot decode JPEG (libjpeg: "));
  // Truncated JPEG: libjpeg only warns and fills with grey; we refuse it.
  const std::vector<uint8_t> jpeg = encode_jpeg(gradient(64, 64, 3));
  const std::vector<uint8_t> cut(jpeg.begin(), jpeg.begin() + jpeg.size() * 2 / 3);
  msg = error_of<DataError>([&] { decode_image(cut.data(), cut.size(), "cut.jpg"); });
  EXPECT_THAT(msg, HasSubstr("cut.jpg: cannot decode JPEG"));
  EXPECT_THAT(msg, HasSubstr("truncated"));
  // Not an image, empty, missing.
  const std::string text = dir.file("notes.png");
  write_file_bytes(text, {'h', 'e', 'l', 'l', 'o'});
  EXPECT_THAT(error_of<DataError>([&] { read_image(text); }), HasSubstr(text + ": not a PNG or JPEG file"));
  const std::string empty = dir.file("empty.png");
  write_file_bytes(empty, {});
  EXPECT_THAT(error_of<DataError>([&] { read_image(empty); }), HasSubstr("the file is empty"));
  EXPECT_THAT(error_of<DataError>([&] { read_image(dir.file("missing.png")); }),
              HasSubstr(dir.file("missing.png") + ": cannot open"));
}

TEST(FitImage, SameSizeIsAPlanarCopy) {
  const Image image = gradient(5, 4, 3);
  std::vector<uint8_t> out(3 * 4 * 5);
  fit_image(image, 3, 4, 5, ResizeMode::Crop, out.data());
  for (size_t c = 0; c < 3; ++c) {
    for (size_t p = 0; p < 20; ++p) EXPECT_EQ(out[c * 20 + p], image.pixels[p * 3 + c]);
  }
}

TEST(FitImage, ChannelConversion) {
  Image rgb{1, 1, 3, {100, 50, 200}};
  uint8_t grey = 0;
  fit_image(rgb, 1, 1, 1, ResizeMode::Crop, &grey);
  EXPECT_EQ(grey, static_cast<uint8_t>(std::lround(0.299 * 100 + 0.587 * 50 + 0.114 * 200)));
  Image g{2, 1, 1, {30, 220}};
  std::vector<uint8_t> out(6);
  fit_image(g, 3, 1, 2, ResizeMode::Crop, out.data());
  EXPECT_EQ(out, (std::vector<uint8_t>{30, 220, 30, 220, 30, 220}));
}

TEST(FitImage, CropKeepsTheCentreAndStretchKeepsEverything) {
  // Four columns 0, 100, 200, 255, two rows: 4 x 2 to 2 x 2.
  Image image{4, 2, 1, {0, 100, 200, 255, 0, 100, 200, 255}};
  std::vector<uint8_t> crop(4), stretch(4);
  fit_image(image, 1, 2, 2, ResizeMode::Crop, crop.data());
  EXPECT_EQ(crop, (std::vector<uint8_t>{100, 200, 100, 200}));  // the centre two columns, untouched
  fit_image(image, 1, 2, 2, ResizeMode::Stretch, stretch.data());
  EXPECT_GT(stretch[0], 0);    // averages the left half...
  EXPECT_LT(stretch[0], 100);  // ...weighted towards it
  EXPECT_GT(stretch[1], 200);
  EXPECT_LT(stretch[1], 255);
  EXPECT_EQ(stretch[0], stretch[2]);
  // A constant image stays constant whatever the scale.
  Image flat{7, 5, 3, std::vector<uint8_t>(7 * 5 * 3, 77)};
  std::vector<uint8_t> up(3 * 16 * 16), down(3 * 2 * 3);
  fit_image(flat, 3, 16, 16, ResizeMode::Crop, up.data());
  fit_image(flat, 3, 2, 3, ResizeMode::Stretch, down.data());
  EXPECT_TRUE(std::all_of(up.begin(), up.end(), [](uint8_t v) { return v == 77; }));
  EXPECT_TRUE(std::all_of(down.begin(), down.end(), [](uint8_t v) { return v == 77; }));
}

ImageFolderOptions options_for(size_t channels, size_t size) {
  ImageFolderOptions o;
  o.shape = {channels, size, size};
  return o;
}

TEST(ImageFolder, ScansClassesInOrderAndDecodesEveryKind) {
  ScratchDir dir;
  FolderRecipe r;
  r.classes = 3;
  r.per_class = 6;
  r.size = 16;
  r.jpeg_every = 4;
  r.grey_every = 5;
  r.resize_every = 3;
  const std::vector<std::string> paths = write_image_folder(dir.path(), r);
  // Ignored: hidden files and folders, other extensions, files at the top level.
  testing::write_file(dir.file("class_0/.hidden.png"), {1, 2, 3}, testing::Gzip::No);
  testing::write_file(dir.file("class_1/readme.txt"), {1, 2, 3}, testing::Gzip::No);
  testing::write_file(dir.file("top.png"), {1, 2, 3}, testing::Gzip::No);
  std::filesystem::create_directories(dir.file(".cache"));
  // Nested folders of a class count; upper-case extensions too.
  std::filesystem::create_directories(dir.file("class_2/more"));
  write_file_bytes(dir.file("class_2/more/x.PNG"), encode_png(pattern_image(2, 16, 16, 3, 9)));

  const ImageFolder folder(dir.path().string(), options_for(3, 16));
  EXPECT_EQ(folder.class_names(), (std::vector<std::string>{"class_0", "class_1", "class_2"}));
  ASSERT_EQ(folder.size(), paths.size() + 1);
  EXPECT_TRUE(folder.cached());
  EXPECT_EQ(folder.cache_bytes(), folder.size() * 3 * 16 * 16);
  // Labels follow the folders; paths are sorted within each class.
  std::vector<int32_t> expected_labels;
  for (size_t k = 0; k < 3; ++k) expected_labels.insert(expected_labels.end(), r.per_class + (k == 2), int32_t(k));
  for (size_t i = 0; i < folder.size(); ++i) EXPECT_EQ(folder.label(i), expected_labels[i]) << folder.path(i);
  for (size_t i = 1; i < folder.size(); ++i) {
    if (folder.label(i) == folder.label(i - 1)) EXPECT_LT(folder.path(i - 1), folder.path(i));
  }
  // Cached pixels equal a fresh decode of the file.
  for (size_t i = 0; i < folder.size(); ++i) {
    std::vector<uint8_t> expected(3 * 16 * 16);
    fit_image(read_image(folder.path(i)), 3, 16, 16, ResizeMode::Crop, expected.data());
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(), folder.cached_pixels(i))) << folder.path(i);
  }
}

TEST(ImageFolder, CacheThreadsAndChannelsGiveTheSameSamples) {
  ScratchDir dir;
  FolderRecipe r;
  r.per_class = 5;
  r.size = 12;
  r.jpeg_every = 3;
  r.resize_every = 2;
  write_image_folder(dir.path(), r);
  ImageFolderOptions one = options_for(3, 10), many = one, uncached = one;
  one.threads = 1;
  many.threads = 3;
  uncached.cache_mb = 0;
  auto a = std::make_shared<const ImageFolder>(dir.path().string(), one);
  auto b = std::make_shared<const ImageFolder>(dir.path().string(), many);
  auto c = std::make_shared<const ImageFolder>(dir.path().string(), uncached);
  EXPECT_FALSE(c->cached());
  ASSERT_EQ(a->size(), 20u);
  std::vector<uint32_t> all(20);
  for (uint32_t i = 0; i < 20; ++i) all[i] = i;
  const ImageFolderDataset da(a, all, FolderPart::Whole, 0, {0.5f}, {0.25f});
  const ImageFolderDataset db(b, all, FolderPart::Whole, 0, {0.5f}, {0.25f});
  const ImageFolderDataset dc(c, all, FolderPart::Whole, 0, {0.5f}, {0.25f});
  EXPECT_EQ(da.load_cost(), LoadCost::Copy);
  EXPECT_EQ(dc.load_cost(), LoadCost::Decode);
  EXPECT_THAT(dc.describe(), HasSubstr("decoded on every read"));
  std::vector<float> x(300), y(300), z(300);
  for (size_t i = 0; i < 20; ++i) {
    int32_t la, lb, lc;
    da.get(i, x.data(), &la);
    db.get(i, y.data(), &lb);
    dc.get(i, z.data(), &lc);
    ASSERT_EQ(x, y) << i;
    ASSERT_EQ(x, z) << i;
    EXPECT_EQ(la, static_cast<int32_t>(i / 5));
    EXPECT_EQ(lb, la);
    EXPECT_EQ(lc, la);
    // value = (pixel / 255 - mean) / std
    EXPECT_NEAR(x[7], (a->cached_pixels(i)[7] / 255.0f - 0.5f) / 0.25f, 1e-6f);
  }
}

TEST(ImageFolder, BadImagesFailOrAreSkippedByName) {
  ScratchDir dir;
  FolderRecipe r;
  r.classes = 2;
  r.per_class = 4;
  r.size = 8;
  const std::vector<std::string> paths = write_image_folder(dir.path(), r);
  const std::vector<uint8_t> good = read_file_bytes(paths[1]);
  write_file_bytes(paths[1], std::vector<uint8_t>(good.begin(), good.begin() + good.size() / 2));  // truncated PNG
  const std::string bad_jpeg = (dir.path() / "class_1" / "broken.jpg").string();
  write_file_bytes(bad_jpeg, {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1, 2, 3, 4, 5, 6, 7});

  ImageFolderOptions o = options_for(3, 8);
  const std::string msg = error_of<DataError>([&] { ImageFolder f(dir.path().string(), o); });
  EXPECT_THAT(msg, HasSubstr(paths[1] + ": cannot decode PNG (libpng: "));
  EXPECT_THAT(msg, HasSubstr("and 1 more"));
  EXPECT_THAT(msg, HasSubstr("data.on_bad_image: skip"));

  o.on_bad_image = BadImagePolicy::Skip;
  ::testing::internal::CaptureStderr();
  const ImageFolder folder(dir.path().string(), o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(folder.size(), 7u);
  ASSERT_EQ(folder.skipped().size(), 2u);
  for (const std::string& p : {paths[1], bad_jpeg}) {
    const size_t first = err.find(p);
    EXPECT_NE(first, std::string::npos) << err;
    EXPECT_EQ(err.find(p, first + 1), std::string::npos) << "reported more than once: " << err;
  }
  for (size_t i = 0; i < folder.size(); ++i) {
    EXPECT_NE(folder.path(i), paths[1]);
    EXPECT_NE(folder.path(i), bad_jpeg);
  }
  EXPECT_EQ(folder.label(0), 0);
  EXPECT_EQ(folder.label(3), 1);  // class 0 lost one image
  const ImageFolderDataset all(std::make_shared<const ImageFolder>(dir.path().string(), o), {0, 1}, FolderPart::Whole,
                               0, {0.0f}, {1.0f});
  EXPECT_THAT(all.describe(), HasSubstr("2 unreadable images skipped"));
}

TEST(ImageFolder, MissingOrEmptyFoldersAreDataErrors) {
  ScratchDir dir;
  const ImageFolderOptions o = options_for(1, 8);
  EXPECT_THAT(error_of<DataError>([&] { ImageFolder f(dir.file("nope"), o); }),
              HasSubstr(dir.file("nope") + ": no such folder"));
  EXPECT_THAT(error_of<DataError>([&] { ImageFolder f(dir.path().string(), o); }), HasSubstr("no class sub-folders"));
  std::filesystem::create_directories(dir.file("cats"));
  std::filesystem::create_directories(dir.file("dogs"));
  write_file_bytes(dir.file("cats/a.png"), encode_png(pattern_image(0, 8, 8, 1, 1)));
  EXPECT_THAT(error_of<DataError>([&] { ImageFolder f(dir.path().string(), o); }),
              HasSubstr(dir.file("dogs") + ": class folder holds no .png, .jpg or .jpeg files"));
  ImageFolderOptions bad_shape = o;
  bad_shape.shape = {2, 8, 8};
  EXPECT_THROW(ImageFolder(dir.path().string(), bad_shape), ShapeError);
}

TEST(ImageFolderSplit, DeterministicDisjointCompleteStratifiedAndSeeded) {
  ScratchDir dir;
  FolderRecipe r;
  r.classes = 3;
  r.per_class = 20;
  r.size = 4;
  write_image_folder(dir.path(), r);
  const ImageFolder folder(dir.path().string(), options_for(3, 4));
  const FolderSplit a = split_image_folder(folder, 0.25, 7);
  const FolderSplit again = split_image_folder(folder, 0.25, 7);
  const FolderSplit other = split_image_folder(folder, 0.25, 8);
  EXPECT_EQ(a.train, again.train);
  EXPECT_EQ(a.validation, again.validation);
  EXPECT_NE(a.validation, other.validation);
  EXPECT_EQ(a.validation.size(), 15u);  // 5 of each class
  EXPECT_EQ(a.train.size(), 45u);
  std::set<uint32_t> seen(a.train.begin(), a.train.end());
  for (uint32_t v : a.validation) EXPECT_TRUE(seen.insert(v).second) << v << " is in both parts";
  EXPECT_EQ(seen.size(), 60u);
  size_t per_class[3] = {0, 0, 0};
  for (uint32_t v : a.validation) ++per_class[folder.label(v)];
  EXPECT_EQ(per_class[0], 5u);
  EXPECT_EQ(per_class[1], 5u);
  EXPECT_EQ(per_class[2], 5u);
  // Not simply the first or last files of each class.
  std::vector<uint32_t> first_five;
  for (uint32_t k = 0; k < 3; ++k) {
    for (uint32_t i = 0; i < 5; ++i) first_five.push_back(k * 20 + i);
  }
  EXPECT_NE(a.validation, first_five);
  EXPECT_TRUE(split_image_folder(folder, 0.0, 7).validation.empty());
  EXPECT_EQ(split_image_folder(folder, 0.999, 7).train.size(), 3u);  // one image of each class always trains
  EXPECT_THROW(split_image_folder(folder, 1.0, 7), DataError);
}

// ---- config --------------------------------------------------------------------------------------

DataSplits build(const std::string& yaml, uint64_t seed = 1) {
  ConfigMap top = ConfigMap::parse(yaml, "run.yaml");
  ConfigMap data = top.get_map("data");
  DataSplits splits = make_datasets(data, seed);
  data.finish();
  return splits;
}

TEST(ImageFolderConfig, BuildsTrainAndValidationParts) {
  ScratchDir dir;
  FolderRecipe r;
  r.per_class = 10;
  r.size = 8;
  write_image_folder(dir.path(), r);
  const std::string yaml = "data:\n  type: image_folder\n  dir: " + dir.path().string() +
                           "\n  shape: [3, 8, 8]\n  mean: [0.5, 0.4, 0.3]\n  std: 0.2\n"
                           "  augment: {crop_padding: 2, horizontal_flip: true}\n";
  DataSplits s = build(yaml);
  ASSERT_TRUE(s.train && s.test);
  EXPECT_EQ(s.train->size(), 32u);
  EXPECT_EQ(s.test->size(), 8u);
  EXPECT_EQ(s.train->sample_shape(), (Shape{3, 8, 8}));
  EXPECT_EQ(s.train->num_classes(), 4u);
  EXPECT_EQ(s.train->class_names(), (std::vector<std::string>{"class_0", "class_1", "class_2", "class_3"}));
  EXPECT_THAT(s.train->describe(), HasSubstr("image_folder " + dir.path().string() +
                                             ": 4 classes (class_0, class_1, class_2, class_3), 32 train / 8 "
                                             "validation of (3, 8, 8), training part"));
  EXPECT_THAT(s.test->describe(), HasSubstr("validation part"));
  EXPECT_THAT(s.train->describe(), HasSubstr("cached in memory"));
  ASSERT_TRUE(s.train_augment);
  EXPECT_EQ(s.train_augment->crop_padding(), 2u);
  // The split follows the run seed.
  DataSplits other = build(yaml, 2);
  std::vector<float> x(192), y(192);
  int32_t lx, ly;
  bool differs = false;
  for (size_t i = 0; i < 8 && !differs; ++i) {
    s.test->get(i, x.data(), &lx);
    other.test->get(i, y.data(), &ly);
    differs = x != y;
  }
  EXPECT_TRUE(differs);
}

TEST(ImageFolderConfig, SeparateTestFolder) {
  ScratchDir dir;
  FolderRecipe r;
  r.per_class = 3;
  r.size = 6;
  write_image_folder(dir.path() / "train", r);
  r.per_class = 2;
  r.seed = 9;
  write_image_folder(dir.path() / "test", r);
  const std::string base = "data:\n  type: image_folder\n  dir: " + (dir.path() / "train").string() +
                           "\n  test_dir: " + (dir.path() / "test").string() + "\n  shape: [1, 6, 6]\n";
  DataSplits s = build(base);
  EXPECT_EQ(s.train->size(), 12u);
  EXPECT_EQ(s.test->size(), 8u);
  EXPECT_FALSE(s.train_augment);
  EXPECT_THAT(s.test->describe(), HasSubstr("8 images of (1, 6, 6)"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  validation_fraction: 0.1\n"); }),
              HasSubstr("run.yaml:6: key 'data.validation_fraction': cannot be combined with data.test_dir"));
  std::filesystem::create_directories(dir.path() / "test" / "class_9");
  write_file_bytes((dir.path() / "test" / "class_9" / "a.png").string(), encode_png(pattern_image(0, 6, 6, 1, 1)));
  EXPECT_THAT(error_of<DataError>([&] { build(base); }), HasSubstr("must hold the same class sub-folders"));
}

TEST(ImageFolderConfig, KeyErrorsNameTheKey) {
  ScratchDir dir;
  FolderRecipe r;
  r.per_class = 2;
  r.size = 4;
  write_image_folder(dir.path(), r);
  const std::string base = "data:\n  type: image_folder\n  dir: " + dir.path().string() + "\n";
  EXPECT_THAT(error_of<ConfigError>([&] { build(base); }), HasSubstr("key 'data.shape'"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [2, 4, 4]\n"); }),
              HasSubstr("run.yaml:4: key 'data.shape': expected [C, H, W] with C = 1 (grey) or 3 (RGB)"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [3, 4, 4]\n  validation_fraction: 1\n"); }),
              HasSubstr("key 'data.validation_fraction': must be in [0, 1)"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [3, 4, 4]\n  mean: [0.1, 0.2]\n"); }),
              HasSubstr("key 'data.mean': has 2 entries"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [3, 4, 4]\n  resize: squash\n"); }),
              HasSubstr("key 'data.resize': unknown value 'squash' (expected one of: crop, stretch)"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [3, 4, 4]\n  on_bad_image: ignore\n"); }),
              HasSubstr("key 'data.on_bad_image'"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [3, 4, 4]\n  validation_fraction: 0.5\n  train_images: x\n"); }),
              HasSubstr("key 'data.train_images': unknown key"));
  EXPECT_THAT(error_of<ConfigError>([&] { build(base + "  shape: [3, 4, 4]\n  validation_fraction: 0.5\n  augment: {flip: true}\n"); }),
              HasSubstr("key 'data.augment.flip': unknown key"));
  const std::string missing = "data:\n  type: image_folder\n  dir: " + dir.file("absent") + "\n  shape: [3, 4, 4]\n";
  const std::string msg = error_of<DataError>([&] { build(missing); });
  EXPECT_THAT(msg, HasSubstr(dir.file("absent") + ": no such folder (named by run.yaml:3: key 'data.dir')"));
  EXPECT_THAT(msg, HasSubstr("--set data.dir="));
  EXPECT_THAT(msg, Not(HasSubstr("test_dir")));
}

}  // namespace
}  // namespace dptrain
