#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/data/dataset.h"
#include "tests/runtime/data/test_idx_files.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::Gzip;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_pair;

// Builds the data sets from `yaml` (a whole config file) and runs finish() as a caller would.
DataSplits build(const std::string& yaml, uint64_t seed = 1) {
  ConfigMap top = ConfigMap::parse(yaml, "run.yaml");
  ConfigMap data = top.get_map("data");
  DataSplits splits = make_datasets(data, seed);
  data.finish();
  return splits;
}

template <typename E>
std::string error_of(const std::string& yaml) {
  try {
    build(yaml);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "nothing was thrown for:\n" << yaml;
  return "";
}

// A config for the idx files a test wrote with write_pair(dir, "train"/"test", ...).
std::string idx_yaml(const ScratchDir& dir, const std::string& extra = "") {
  return "data:\n"
         "  type: idx\n"
         "  dir: " +
         dir.path().string() +
         "\n"
         "  train_images: train-images\n"
         "  train_labels: train-labels\n"
         "  test_images: test-images\n"
         "  test_labels: test-labels\n" +
         extra;
}

TEST(DatasetsConfig, Synthetic) {
  DataSplits s = build(
      "data:\n"
      "  type: synthetic\n"
      "  train_samples: 300\n"
      "  test_samples: 50\n"
      "  shape: [3, 8, 6]\n"
      "  classes: 4\n"
      "  mean: [0.1, 0.2, 0.3]\n"
      "  std: 2\n"
      "  noise: 0.5\n");
  ASSERT_TRUE(s.train && s.test);
  EXPECT_EQ(s.train->size(), 300u);
  EXPECT_EQ(s.test->size(), 50u);
  EXPECT_EQ(s.train->sample_shape(), (Shape{3, 8, 6}));
  EXPECT_EQ(s.test->sample_shape(), (Shape{3, 8, 6}));
  EXPECT_EQ(s.train->num_classes(), 4u);
  std::vector<float> a(144), b(144);
  int32_t la = 0, lb = 0;
  s.train->get(0, a.data(), &la);
  s.test->get(0, b.data(), &lb);
  EXPECT_NE(a, b);
  // The run seed changes the data.
  DataSplits other = build("data: {type: synthetic, train_samples: 300, test_samples: 50, shape: [3, 8, 6]}", 2);
  DataSplits same = build("data: {type: synthetic, train_samples: 300, test_samples: 50, shape: [3, 8, 6]}", 1);
  std::vector<float> c(144), d(144);
  other.train->get(0, c.data(), &la);
  same.train->get(0, d.data(), &lb);
  EXPECT_NE(c, d);
}

TEST(DatasetsConfig, SyntheticDefaults) {
  DataSplits s = build("data:\n  type: synthetic\n");
  EXPECT_EQ(s.train->size(), 60000u);
  EXPECT_EQ(s.test->size(), 10000u);
  EXPECT_EQ(s.train->sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(s.train->num_classes(), 10u);
}

TEST(DatasetsConfig, UnknownTypeListsKnownOnes) {
  const std::string msg = error_of<ConfigError>("data:\n  type: imagenet\n");
  EXPECT_THAT(msg, HasSubstr("run.yaml:2: key 'data.type'"));
  EXPECT_THAT(msg, HasSubstr("unknown value 'imagenet'"));
  EXPECT_THAT(msg, HasSubstr("idx, synthetic"));
}

TEST(DatasetsConfig, WrongValueTypeNamesKeyAndLine) {
  const std::string msg = error_of<ConfigError>("data:\n  type: synthetic\n  shape: [1, 28, 28]\n  classes: ten\n");
  EXPECT_THAT(msg, HasSubstr("run.yaml:4: key 'data.classes'"));
  EXPECT_THAT(msg, HasSubstr("'ten'"));
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  mean: [a]\n"),
              HasSubstr("run.yaml:3: key 'data.mean'"));
}

TEST(DatasetsConfig, SyntheticValueErrors) {
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  shape: [28, 28]\n"),
              HasSubstr("run.yaml:3: key 'data.shape': expected [C, H, W]"));
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  shape: [3, 4, 4]\n  mean: [0.1, 0.2]\n"),
              HasSubstr("run.yaml:4: key 'data.mean': has 2 entries; expected 1 or one per channel (3)"));
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  std: [0]\n"),
              HasSubstr("run.yaml:3: key 'data.std': every entry must be > 0"));
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  classes: 0\n"), HasSubstr("key 'data.classes'"));
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  train_samples: 0\n"),
              HasSubstr("key 'data.train_samples'"));
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  noise: -1\n"), HasSubstr("key 'data.noise'"));
}

TEST(DatasetsConfig, KeysOfTheOtherTypeAreUnknown) {
  EXPECT_THAT(error_of<ConfigError>("data:\n  type: synthetic\n  dir: /tmp\n"),
              HasSubstr("run.yaml:3: key 'data.dir': unknown key"));
  ScratchDir dir;
  write_pair(dir, "train", 6, 4, 4, 3, Gzip::Yes);
  write_pair(dir, "test", 3, 4, 4, 3, Gzip::No);
  const std::string msg = error_of<ConfigError>(idx_yaml(dir, "  shape: [1, 4, 4]\n"));
  EXPECT_THAT(msg, HasSubstr("run.yaml:8: key 'data.shape': unknown key"));
  EXPECT_THAT(msg, HasSubstr("train_images"));
}

TEST(DatasetsConfig, IdxFromFolder) {
  ScratchDir dir;
  write_pair(dir, "train", 6, 4, 5, 3, Gzip::Yes);
  write_pair(dir, "test", 3, 4, 5, 3, Gzip::No);
  DataSplits s = build(idx_yaml(dir, "  mean: 0.5\n  std: [0.25]\n  classes: 3\n"));
  EXPECT_EQ(s.train->size(), 6u);
  EXPECT_EQ(s.test->size(), 3u);
  EXPECT_EQ(s.train->sample_shape(), (Shape{1, 4, 5}));
  EXPECT_EQ(s.train->num_classes(), 3u);
  EXPECT_EQ(s.test->num_classes(), 3u);
  std::vector<float> x(20);
  int32_t label = -1;
  s.train->get(4, x.data(), &label);
  EXPECT_EQ(label, 1);
  EXPECT_NEAR(x[7], (testing::test_pixel(4, 7) / 255.0f - 0.5f) / 0.25f, 1e-5f);
  EXPECT_THAT(s.train->describe(), HasSubstr(dir.file("train-images")));
}

TEST(DatasetsConfig, IdxAbsolutePathsAndCaps) {
  ScratchDir dir;
  write_pair(dir, "train", 6, 2, 2, 10, Gzip::No);
  write_pair(dir, "test", 3, 2, 2, 10, Gzip::No);
  const std::string yaml =
      "data:\n  dir: /nonexistent\n"
      "  train_images: " +
      dir.file("train-images") +
      "\n"
      "  train_labels: " +
      dir.file("train-labels") +
      "\n"
      "  test_images: " +
      dir.file("test-images") +
      "\n"
      "  test_labels: " +
      dir.file("test-labels") +
      "\n"
      "  train_samples: 4\n";
  DataSplits s = build(yaml);  // type defaults to idx
  EXPECT_EQ(s.train->size(), 4u);
  EXPECT_EQ(s.test->size(), 3u);
  const std::string msg = error_of<ConfigError>(yaml + "  test_samples: 5\n");
  EXPECT_THAT(msg, HasSubstr("run.yaml:8: key 'data.test_samples': asks for 5 samples"));
  EXPECT_THAT(msg, HasSubstr(dir.file("test-images") + " holds only 3"));
}

TEST(DatasetsConfig, IdxMeanMustHaveOneEntry) {
  ScratchDir dir;
  write_pair(dir, "train", 2, 2, 2, 2, Gzip::No);
  write_pair(dir, "test", 2, 2, 2, 2, Gzip::No);
  EXPECT_THAT(error_of<ConfigError>(idx_yaml(dir, "  mean: [0.1, 0.2, 0.3]\n")),
              HasSubstr("run.yaml:8: key 'data.mean': has 3 entries"));
}

TEST(DatasetsConfig, IdxMissingFileNamesFileAndKey) {
  ScratchDir dir;
  write_pair(dir, "train", 2, 2, 2, 2, Gzip::No);
  const std::string msg = error_of<DataError>(idx_yaml(dir));
  EXPECT_THAT(msg, HasSubstr(dir.file("test-images") + ": no such file"));
  EXPECT_THAT(msg, HasSubstr("run.yaml:6: key 'data.test_images'"));
  // Under the default Fashion-MNIST folder the message says which package to install.
  const std::string fashion = error_of<DataError>("data:\n  type: idx\n  train_images: no-such-file-idx3-ubyte.gz\n");
  EXPECT_THAT(fashion, HasSubstr("/usr/share/datasets/fashion-mnist/no-such-file-idx3-ubyte.gz: no such file"));
  EXPECT_THAT(fashion, HasSubstr("apt-get install dataset-fashion-mnist"));
}

TEST(DatasetsConfig, IdxTrainAndTestMustAgree) {
  ScratchDir dir;
  write_pair(dir, "train", 4, 2, 2, 4, Gzip::No);
  write_pair(dir, "test", 4, 3, 3, 4, Gzip::No);
  const std::string msg = error_of<DataError>(idx_yaml(dir, "  classes: 4\n"));
  EXPECT_THAT(msg, HasSubstr(dir.file("train-images")));
  EXPECT_THAT(msg, HasSubstr(dir.file("test-images")));

  // Test labels beyond the inferred training class count are an error naming the test labels.
  ScratchDir dir2;
  write_pair(dir2, "train", 4, 2, 2, 3, Gzip::No);  // labels 0..2: 3 classes inferred
  write_pair(dir2, "test", 5, 2, 2, 5, Gzip::No);   // labels up to 4
  EXPECT_THAT(error_of<DataError>(idx_yaml(dir2, "  classes: 0\n")), HasSubstr(dir2.file("test-labels") + ": label 4"));
}

}  // namespace
}  // namespace dptrain
