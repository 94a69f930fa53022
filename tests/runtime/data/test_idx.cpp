#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/data/idx.h"
#include "runtime/data/idx_dataset.h"
#include "tests/runtime/data/test_idx_files.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::Gzip;
using ::testing::HasSubstr;
using testing::idx_bytes;
using testing::ScratchDir;
using testing::write_file;
using testing::write_pair;

// Runs `fn`, expects a DataError, and returns its message.
template <typename Fn>
std::string data_error(Fn fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected DataError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected DataError, nothing was thrown";
  return "";
}

class IdxFormat : public ::testing::TestWithParam<Gzip> {};

TEST_P(IdxFormat, ReadsDimsAndBytes) {
  ScratchDir dir;
  const std::vector<uint8_t> payload{1, 2, 3, 4, 5, 6, 250, 251, 252, 253, 254, 255};
  write_file(dir.file("a.idx"), idx_bytes({2, 3, 2}, payload), GetParam());
  const IdxArray a = read_idx(dir.file("a.idx"));
  EXPECT_EQ(a.file, dir.file("a.idx"));
  EXPECT_EQ(a.dims, (Shape{2, 3, 2}));
  EXPECT_EQ(a.data, payload);
}

TEST_P(IdxFormat, TruncatedPayloadNamesFileAndCounts) {
  ScratchDir dir;
  std::vector<uint8_t> bytes = idx_bytes({3, 2, 2}, std::vector<uint8_t>(12, 7));
  bytes.resize(bytes.size() - 5);
  const std::string path = dir.file("short.idx");
  write_file(path, bytes, GetParam());
  const std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": truncated: expected 12 bytes of image data"));
  EXPECT_THAT(msg, HasSubstr("found 7"));
}

TEST_P(IdxFormat, TrailingGarbageIsAnError) {
  ScratchDir dir;
  std::vector<uint8_t> bytes = idx_bytes({4}, {0, 1, 2, 3});
  bytes.push_back(9);
  bytes.push_back(9);
  const std::string path = dir.file("long.idx");
  write_file(path, bytes, GetParam());
  const std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path));
  EXPECT_THAT(msg, HasSubstr("2 unexpected bytes after the 4 bytes of label data"));
}

TEST_P(IdxFormat, WrongMagicNamesFile) {
  ScratchDir dir;
  const std::string path = dir.file("bad.idx");
  write_file(path, {'P', 'K', 3, 4, 0, 0, 0, 1, 5}, GetParam());
  const std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": not an IDX file: bad magic '50 4b 03 04'"));
}

TEST_P(IdxFormat, UnsupportedTypeNamesIt) {
  ScratchDir dir;
  const std::string path = dir.file("float.idx");
  write_file(path, idx_bytes({1}, {0, 0, 0, 0}, 0x0D), GetParam());
  const std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": unsupported IDX data type 0x0D (float32)"));
}

TEST_P(IdxFormat, ShortHeaderIsTruncated) {
  ScratchDir dir;
  const std::string path = dir.file("hdr.idx");
  write_file(path, {0, 0, 8, 3, 0, 0, 0, 2}, GetParam());
  const std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": truncated: the IDX header declares 3 dimensions"));
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxFormat, ::testing::Values(Gzip::No, Gzip::Yes),
                         [](const auto& info) { return info.param == Gzip::Yes ? "Gzip" : "Plain"; });

TEST(Idx, GzipIsDetectedByContentNotName) {
  ScratchDir dir;
  write_file(dir.file("looks-plain.idx"), idx_bytes({3}, {4, 5, 6}), Gzip::Yes);
  write_file(dir.file("looks-gzipped.gz"), idx_bytes({3}, {7, 8, 9}), Gzip::No);
  EXPECT_EQ(read_idx(dir.file("looks-plain.idx")).data, (std::vector<uint8_t>{4, 5, 6}));
  EXPECT_EQ(read_idx(dir.file("looks-gzipped.gz")).data, (std::vector<uint8_t>{7, 8, 9}));
}

TEST(Idx, CutGzipStreamIsTruncated) {
  ScratchDir dir;
  std::vector<uint8_t> payload(5000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i * 7919 % 251);
  write_file(dir.file("full.gz"), idx_bytes({5000}, payload), Gzip::Yes);
  std::vector<uint8_t> gz = testing::read_bytes(dir.file("full.gz"));
  ASSERT_GT(gz.size(), 100u);
  gz.resize(gz.size() / 2);
  const std::string path = dir.file("cut.gz");
  write_file(path, gz, Gzip::No);
  const std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": truncated gzip stream"));
}

TEST(Idx, MissingFileNamesItAndTheFashionPackage) {
  ScratchDir dir;
  const std::string path = dir.file("nope.idx");
  std::string msg = data_error([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": cannot open"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("apt-get")));
  EXPECT_THAT(idx_install_hint("/usr/share/datasets/fashion-mnist/x.gz"),
              HasSubstr("apt-get install dataset-fashion-mnist"));
  EXPECT_THAT(idx_install_hint("/usr/share/datasets/fashion-mnist/x.gz"), HasSubstr("scripts/install-deps.sh"));
  EXPECT_EQ(idx_install_hint(path), "");
}

TEST(IdxDataset, NormalisesPixelsAndKeepsLabels) {
  ScratchDir dir;
  write_pair(dir, "d", 5, 4, 3, 3, Gzip::Yes);
  const float mean = 0.25f, std = 0.5f;
  auto ds = IdxDataset::load(dir.file("d-images"), dir.file("d-labels"), mean, std, 3);
  ASSERT_EQ(ds->size(), 5u);
  EXPECT_EQ(ds->sample_shape(), (Shape{1, 4, 3}));
  EXPECT_EQ(ds->num_classes(), 3u);
  EXPECT_THAT(ds->describe(), HasSubstr(dir.file("d-images")));
  std::vector<float> out(12);
  for (size_t i = 0; i < 5; ++i) {
    int32_t label = -1;
    ds->get(i, out.data(), &label);
    EXPECT_EQ(label, static_cast<int32_t>(i % 3));
    for (size_t j = 0; j < 12; ++j) {
      const float expected = (testing::test_pixel(i, j) / 255.0f - mean) / std;
      ASSERT_NEAR(out[j], expected, 1e-6f) << "sample " << i << " pixel " << j;
    }
  }
  int32_t label = 0;
  EXPECT_THROW(ds->get(5, out.data(), &label), DataError);
}

TEST(IdxDataset, DefaultNormalisationIsUnitRange) {
  ScratchDir dir;
  write_file(dir.file("i"), idx_bytes({1, 1, 3}, {0, 51, 255}), Gzip::No);
  write_file(dir.file("l"), idx_bytes({1}, {0}), Gzip::No);
  auto ds = IdxDataset::load(dir.file("i"), dir.file("l"), 0.0f, 1.0f, 10);
  std::vector<float> out(3);
  int32_t label = -1;
  ds->get(0, out.data(), &label);
  EXPECT_FLOAT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[1], 0.2f);
  EXPECT_FLOAT_EQ(out[2], 1.0f);
  EXPECT_EQ(label, 0);
}

TEST(IdxDataset, LimitKeepsTheFirstSamples) {
  ScratchDir dir;
  write_pair(dir, "d", 10, 2, 2, 10, Gzip::No);
  auto ds = IdxDataset::load(dir.file("d-images"), dir.file("d-labels"), 0.0f, 1.0f, 10, 4);
  EXPECT_EQ(ds->size(), 4u);
  EXPECT_THROW(IdxDataset::load(dir.file("d-images"), dir.file("d-labels"), 0.0f, 1.0f, 10, 11), DataError);
}

TEST(IdxDataset, MismatchedCountsNameBothFiles) {
  ScratchDir dir;
  write_pair(dir, "a", 6, 2, 2, 10, Gzip::No);
  write_pair(dir, "b", 5, 2, 2, 10, Gzip::No);
  const std::string msg =
      data_error([&] { IdxDataset::load(dir.file("a-images"), dir.file("b-labels"), 0.0f, 1.0f, 10); });
  EXPECT_THAT(msg, HasSubstr(dir.file("a-images") + " holds 6 images"));
  EXPECT_THAT(msg, HasSubstr(dir.file("b-labels") + " holds 5 labels"));
}

TEST(IdxDataset, WrongDimensionCountsAreErrors) {
  ScratchDir dir;
  write_pair(dir, "d", 4, 2, 2, 10, Gzip::No);
  // Swapped: a 1-dim file as images, a 3-dim file as labels.
  std::string msg = data_error([&] { IdxDataset::load(dir.file("d-labels"), dir.file("d-labels"), 0, 1, 10); });
  EXPECT_THAT(msg, HasSubstr(dir.file("d-labels") + ": expected an IDX image file with 3 dimensions"));
  msg = data_error([&] { IdxDataset::load(dir.file("d-images"), dir.file("d-images"), 0, 1, 10); });
  EXPECT_THAT(msg, HasSubstr(dir.file("d-images") + ": expected an IDX label file with 1 dimension"));
}

TEST(IdxDataset, LabelsMustFitTheClassCount) {
  ScratchDir dir;
  write_pair(dir, "d", 8, 2, 2, 8, Gzip::No);  // labels 0..7
  const std::string msg =
      data_error([&] { IdxDataset::load(dir.file("d-images"), dir.file("d-labels"), 0.0f, 1.0f, 5); });
  EXPECT_THAT(msg, HasSubstr(dir.file("d-labels") + ": label 7 at index 7 is out of range for 5 classes"));
  // 0 classes: inferred as max label + 1.
  EXPECT_EQ(IdxDataset::load(dir.file("d-images"), dir.file("d-labels"), 0.0f, 1.0f, 0)->num_classes(), 8u);
}

TEST(IdxDataset, StdMustBePositive) {
  ScratchDir dir;
  write_pair(dir, "d", 2, 2, 2, 2, Gzip::No);
  EXPECT_THROW(IdxDataset::load(dir.file("d-images"), dir.file("d-labels"), 0.0f, 0.0f, 2), DataError);
}

TEST(IdxDataset, FashionMnistIfInstalled) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed (package dataset-fashion-mnist; "
                    "run scripts/install-deps.sh)";
  }
  const auto start = std::chrono::steady_clock::now();
  auto train =
      IdxDataset::load(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", 0.2860f, 0.3530f, 10);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto test =
      IdxDataset::load(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", 0.2860f, 0.3530f, 10);
  EXPECT_EQ(train->size(), 60000u);
  EXPECT_EQ(test->size(), 10000u);
  EXPECT_EQ(train->sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(test->sample_shape(), (Shape{1, 28, 28}));
  EXPECT_LT(load_seconds, 5.0) << "loading the training images took too long";

  // Every class occurs 6000 times in the training set, and the normalised pixels average near 0.
  std::vector<size_t> counts(10);
  std::vector<float> sample(28 * 28);
  double sum = 0.0;
  for (size_t i = 0; i < train->size(); ++i) {
    int32_t label = -1;
    train->get(i, sample.data(), &label);
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++counts[static_cast<size_t>(label)];
    for (float v : sample) sum += v;
  }
  for (size_t c = 0; c < 10; ++c) EXPECT_EQ(counts[c], 6000u) << "class " << c;
  EXPECT_NEAR(sum / (60000.0 * 784.0), 0.0, 0.01);
}

}  // namespace
}  // namespace dptrain
