// HDF5 input: round trip through write_hdf5_splits, the block cache, concurrent reads, float images,
// every kind of bad file, checksums, the writer's guarantees, and the hdf5 config keys.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/data/hdf5_dataset.h"
#include "runtime/data/hdf5_writer.h"
#include "runtime/data/idx_dataset.h"
#include "runtime/data/synthetic_dataset.h"
#include "tests/runtime/data/test_idx_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using testing::Gzip;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_pair;

using test_util::error_of;

// A file written with the HDF5 C API directly, for layouts write_hdf5_splits never produces.
class RawFile {
 public:
  explicit RawFile(const std::string& path) {
    file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(file_, 0) << path;
  }
  ~RawFile() { H5Fclose(file_); }
  // Dataset `name` (groups created on the way) of `file_type` with `dims`, from `data` in `memory_type`.
  void put(const std::string& name, hid_t file_type, hid_t memory_type, const std::vector<hsize_t>& dims,
           const void* data) {
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    const hid_t d = H5Dcreate2(file_, name.c_str(), file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(d, 0) << name;
    EXPECT_GE(H5Dwrite(d, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0) << name;
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(space);
  }

 private:
  hid_t file_ = -1;
};

// IDX train/test pairs of n and m images of h x w, written and loaded with mean 0, std 1.
struct IdxPair {
  std::unique_ptr<IdxDataset> train, test;
};

IdxPair idx_pair(const ScratchDir& dir, uint32_t n, uint32_t m, uint32_t h, uint32_t w, float mean = 0.0f,
                 float std = 1.0f) {
  write_pair(dir, "train", n, h, w, 3, Gzip::No);
  write_pair(dir, "test", m, h, w, 3, Gzip::No);
  return {IdxDataset::load(dir.file("train-images"), dir.file("train-labels"), mean, std, 3),
          IdxDataset::load(dir.file("test-images"), dir.file("test-labels"), mean, std, 3)};
}

using test_util::expect_same_samples;

Hdf5Source source(const std::string& file, const std::string& group = "/train") {
  return Hdf5Source{file, group + "/images", group + "/labels", "data.train_images", "data.train_labels"};
}

TEST(Hdf5Dataset, RoundTripEqualsTheIdxFiles) {
  ScratchDir dir;
  const IdxPair raw = idx_pair(dir, 300, 50, 5, 6);
  Hdf5WriteOptions options;
  options.chunk_samples = 16;
  options.source = "test";
  const Hdf5WriteSummary s = write_hdf5_splits(dir.file("out.h5"), *raw.train, *raw.test, options);
  EXPECT_EQ(s.train, 300u);
  EXPECT_EQ(s.test, 50u);
  EXPECT_EQ(s.chunk_samples, 16u);
  EXPECT_GT(s.file_bytes, 350u * 30u);

  const IdxPair normalised = idx_pair(dir, 300, 50, 5, 6, 0.3f, 0.5f);
  const Hdf5Dataset train(source(dir.file("out.h5")), {0.3f}, {0.5f}, 0, 64);
  const Hdf5Dataset test(source(dir.file("out.h5"), "/test"), {0.3f}, {0.5f}, 0, 64);
  EXPECT_EQ(train.pixels(), Hdf5Pixels::Uint8);
  EXPECT_EQ(train.num_classes(), 3u);      // from the file's num_classes attribute
  EXPECT_EQ(train.block_samples(), 300u);  // whole chunks up to about 128 KiB, at most the whole set
  expect_same_samples(train, *normalised.train);
  expect_same_samples(test, *normalised.test);
  EXPECT_THAT(train.describe(),
              HasSubstr("hdf5 " + dir.file("out.h5") + ":/train/images: 300 x (1, 5, 6) uint8, 3 classes"));
  EXPECT_THAT(train.describe(), HasSubstr("the whole set fits"));
}

TEST(Hdf5Dataset, BlockCacheReadsEachBlockOnceWhenTheSetFits) {
  ScratchDir dir;
  const IdxPair raw = idx_pair(dir, 300, 10, 64, 64);  // 4 KiB per sample
  Hdf5WriteOptions options;
  options.chunk_samples = 8;
  write_hdf5_splits(dir.file("big.h5"), *raw.train, *raw.test, options);
  std::vector<size_t> order(300);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  std::vector<float> x(4096);
  int32_t label;

  const Hdf5Dataset roomy(source(dir.file("big.h5")), {0.0f}, {1.0f}, 0, 64);
  const size_t blocks = (300 + roomy.block_samples() - 1) / roomy.block_samples();
  EXPECT_EQ(roomy.block_samples(), 32u);  // 4 chunks of 8: about 128 KiB
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i : order) roomy.get(i, x.data(), &label);
  }
  EXPECT_EQ(roomy.blocks_read(), blocks);

  const Hdf5Dataset tight(source(dir.file("big.h5")), {0.0f}, {1.0f}, 0, 0);  // at least 4 blocks kept
  EXPECT_THAT(tight.describe(), HasSubstr("blocks are read again"));
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i : order) tight.get(i, x.data(), &label);
  }
  EXPECT_GT(tight.blocks_read(), 2 * blocks);
  for (size_t i = 0; i < 300; ++i) tight.get(i, x.data(), &label);  // in order: one read per block
}

TEST(Hdf5Dataset, ConcurrentGetsMatchSerialOnes) {
  ScratchDir dir;
  const IdxPair raw = idx_pair(dir, 400, 10, 64, 64);
  Hdf5WriteOptions options;
  options.chunk_samples = 4;
  write_hdf5_splits(dir.file("c.h5"), *raw.train, *raw.test, options);
  const Hdf5Dataset data(source(dir.file("c.h5")), {0.1f}, {0.7f}, 0, 0);  // 4 of 13 blocks cached: many reads
  ASSERT_EQ(data.block_samples(), 32u);
  std::vector<std::vector<float>> serial(400, std::vector<float>(4096));
  std::vector<int32_t> labels(400);
  for (size_t i = 0; i < 400; ++i) data.get(i, serial[i].data(), &labels[i]);
  std::vector<std::thread> threads;
  std::atomic<size_t> mismatches{0};
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<size_t> order(400);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), std::mt19937(t));
      std::vector<float> x(4096);
      int32_t label;
      for (size_t i : order) {
        data.get(i, x.data(), &label);
        if (x != serial[i] || label != labels[i]) mismatches.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0u);
  EXPECT_GT(data.blocks_read(), 13u * 4u);
}

TEST(Hdf5Dataset, Float32ImagesWithoutChannelsAndInt64Labels) {
  ScratchDir dir;
  {
    RawFile f(dir.file("f.h5"));
    std::vector<float> images(4 * 2 * 3);
    for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<float>(i) / 24.0f;
    const std::vector<int64_t> labels = {0, 4, 2, 1};
    f.put("images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 2, 3}, images.data());
    f.put("labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {4}, labels.data());
  }
  const Hdf5Dataset d(Hdf5Source{dir.file("f.h5"), "images", "labels"}, {0.5f}, {2.0f}, 0, 16);
  EXPECT_EQ(d.pixels(), Hdf5Pixels::Float32);
  EXPECT_EQ(d.sample_shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(d.num_classes(), 5u);  // largest label + 1: the file has no num_classes attribute
  std::vector<float> x(6);
  int32_t label;
  d.get(1, x.data(), &label);
  EXPECT_EQ(label, 4);
  EXPECT_FLOAT_EQ(x[2], (8.0f / 24.0f - 0.5f) / 2.0f);
  EXPECT_THAT(d.describe(), HasSubstr("float32"));
}

TEST(Hdf5Dataset, BadFilesNameTheFileTheDatasetAndTheFix) {
  ScratchDir dir;
  const std::vector<uint8_t> images(6 * 4, 1);
  const std::vector<int32_t> labels = {0, 1, 2, 0, 1, 2};
  const std::string path = dir.file("bad.h5");
  {
    RawFile f(path);
    f.put("/train/images", H5T_STD_U8LE, H5T_NATIVE_UINT8, {6, 2, 2}, images.data());
    f.put("/train/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {6}, labels.data());
    f.put("/flat/images", H5T_STD_U8LE, H5T_NATIVE_UINT8, {6, 4}, images.data());
    f.put("/short/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {5}, labels.data());
    f.put("/wide/images", H5T_STD_I16LE, H5T_NATIVE_UINT8, {12, 1, 1}, images.data());
    f.put("/float/labels", H5T_IEEE_F32LE, H5T_NATIVE_INT32, {6}, labels.data());
    const std::vector<int32_t> out_of_range = {0, 1, 9, 0, 1, 2}, negative = {0, -1, 0, 0, 0, 0};
    f.put("/range/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {6}, out_of_range.data());
    f.put("/negative/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, {6}, negative.data());
  }
  auto open = [&](const std::string& images_name, const std::string& labels_name, size_t classes = 3) {
    Hdf5Dataset d(Hdf5Source{path, images_name, labels_name, "data.train_images", "data.train_labels"}, {0.f}, {1.f},
                  classes, 8);
  };
  EXPECT_NO_THROW(open("/train/images", "/train/labels"));
  std::string msg = error_of<DataError>([&] { open("/test/images", "/train/labels"); });
  EXPECT_THAT(msg, HasSubstr(path + ": no dataset '/test/images' for the images"));
  EXPECT_THAT(msg, HasSubstr("/train/images, /train/labels"));
  EXPECT_THAT(msg, HasSubstr("set data.train_images"));
  EXPECT_THAT(error_of<DataError>([&] { open("/train/images", "/train/nope"); }), HasSubstr("set data.train_labels"));
  EXPECT_THAT(error_of<DataError>([&] { open("/flat/images", "/train/labels"); }),
              HasSubstr(path + ": dataset '/flat/images' has shape (6, 4); images must be (N, C, H, W) or (N, H, W)"));
  EXPECT_THAT(error_of<DataError>([&] { open("/wide/images", "/train/labels"); }),
              HasSubstr("holds int16; images must be uint8"));
  EXPECT_THAT(error_of<DataError>([&] { open("/train/images", "/float/labels"); }),
              HasSubstr("'/float/labels' holds float32; labels must be integers"));
  EXPECT_THAT(error_of<DataError>([&] { open("/train/images", "/train/images"); }),
              HasSubstr("labels must be one integer per sample"));
  EXPECT_THAT(error_of<DataError>([&] { open("/train/images", "/short/labels"); }),
              HasSubstr("holds 6 images but '/short/labels' holds 5 labels"));
  EXPECT_THAT(error_of<DataError>([&] { open("/train/images", "/range/labels"); }),
              HasSubstr("label 9 at index 2 is out of range for 3 classes"));
  EXPECT_THAT(error_of<DataError>([&] { open("/train/images", "/negative/labels", 0); }),
              HasSubstr("label -1 at index 1 is out of range"));
  EXPECT_THAT(
      error_of<DataError>([&] {
        Hdf5Dataset d(Hdf5Source{path, "/train/images", "/train/labels"}, {0.f, 0.f}, {1.f}, 3, 8);
      }),
      HasSubstr("data.mean has 2 entries but " + path + ": dataset '/train/images' holds images of 1 channels"));
  EXPECT_THAT(error_of<DataError>([&] { Hdf5Dataset d(source(dir.file("none.h5")), {0.f}, {1.f}, 0, 8); }),
              HasSubstr(dir.file("none.h5") + ": no such file"));
  testing::write_file(dir.file("text.h5"), {'n', 'o', 't', ' ', 'h', 'd', 'f'}, Gzip::No);
  EXPECT_THAT(error_of<DataError>([&] { Hdf5Dataset d(source(dir.file("text.h5")), {0.f}, {1.f}, 0, 8); }),
              HasSubstr(dir.file("text.h5") + ": not an HDF5 file"));
}

TEST(Hdf5Dataset, ChecksumsCatchDamagedData) {
  ScratchDir dir;
  const IdxPair raw = idx_pair(dir, 2000, 10, 16, 16);
  write_hdf5_splits(dir.file("d.h5"), *raw.train, *raw.test, Hdf5WriteOptions{});
  std::vector<uint8_t> bytes = testing::read_bytes(dir.file("d.h5"));
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 8; ++i) bytes[i] ^= 0xff;
  testing::write_file(dir.file("d.h5"), bytes, Gzip::No);
  const Hdf5Dataset d(source(dir.file("d.h5")), {0.f}, {1.f}, 0, 64);
  std::vector<float> x(256);
  int32_t label;
  const std::string msg = error_of<DataError>([&] {
    for (size_t i = 0; i < d.size(); ++i) d.get(i, x.data(), &label);
  });
  EXPECT_THAT(msg, HasSubstr(dir.file("d.h5") + ": cannot read samples"));
  EXPECT_THAT(msg, HasSubstr("damaged"));
}

// A data set with class names, for the writer's class_names attribute.
class NamedDataset : public Dataset {
 public:
  size_t size() const override { return 3; }
  Shape sample_shape() const override { return {3, 1, 2}; }
  size_t num_classes() const override { return 2; }
  void get(size_t index, float* out, int32_t* label) const override {
    for (size_t j = 0; j < 6; ++j) out[j] = static_cast<float>((index * 40 + j * 7) % 256) / 255.0f;
    *label = static_cast<int32_t>(index % 2);
  }
  std::string describe() const override { return "named"; }
  std::vector<std::string> class_names() const override { return {"cat", "dög"}; }
};

TEST(Hdf5Writer, ClassNamesAndEmptySetsRoundTrip) {
  ScratchDir dir;
  const NamedDataset named;
  SyntheticSpec none;
  none.num_samples = 0;
  none.num_classes = 2;
  none.sample_shape = named.sample_shape();
  const SyntheticDataset empty(none, 1, SyntheticSplit::Test);
  write_hdf5_splits(dir.file("n.h5"), named, empty, Hdf5WriteOptions{});
  const Hdf5Dataset d(source(dir.file("n.h5")), {0.f}, {1.f}, 0, 8);
  EXPECT_EQ(d.class_names(), (std::vector<std::string>{"cat", "dög"}));
  EXPECT_THAT(d.describe(), HasSubstr("2 classes (cat, dög)"));
  expect_same_samples(d, named);
  const Hdf5Dataset test(source(dir.file("n.h5"), "/test"), {0.f}, {1.f}, 0, 8);
  EXPECT_EQ(test.size(), 0u);
  EXPECT_EQ(test.sample_shape(), named.sample_shape());
}

TEST(Hdf5Writer, NeverDamagesAnExistingFile) {
  ScratchDir dir;
  const IdxPair raw = idx_pair(dir, 20, 5, 4, 4);
  const std::string out = dir.file("keep.h5");
  testing::write_file(out, {'o', 'l', 'd'}, Gzip::No);
  EXPECT_THAT(error_of<DataError>([&] { write_hdf5_splits(out, *raw.train, *raw.test, Hdf5WriteOptions{}); }),
              HasSubstr(out + ": already exists"));
  // Data that is not 8-bit images fails halfway through writing: the old file stays, no temporary is left.
  SyntheticSpec spec;
  spec.num_samples = 500;
  spec.sample_shape = {1, 4, 4};
  const SyntheticDataset synthetic(spec, 1, SyntheticSplit::Train);
  Hdf5WriteOptions replace;
  replace.overwrite = Overwrite::Yes;
  replace.chunk_samples = 8;
  EXPECT_THAT(error_of<DataError>([&] { write_hdf5_splits(out, *raw.train, synthetic, replace); }),
              HasSubstr("is not 8-bit image data"));
  EXPECT_EQ(testing::read_bytes(out), (std::vector<uint8_t>{'o', 'l', 'd'}));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  }
  // With Overwrite::Yes and good data it is replaced.
  write_hdf5_splits(out, *raw.train, *raw.test, replace);
  expect_same_samples(Hdf5Dataset(source(out), {0.f}, {1.f}, 0, 8), *raw.train);
  EXPECT_THAT(
      error_of<DataError>([&] { write_hdf5_splits(dir.file("no/such/dir.h5"), *raw.train, *raw.test, replace); }),
      HasSubstr("does not exist"));
}

DataSplits build(const std::string& yaml) {
  ConfigMap top = ConfigMap::parse(yaml, "run.yaml");
  ConfigMap data = top.get_map("data");
  DataSplits splits = make_datasets(data, 1);
  data.finish();
  return splits;
}

TEST(Hdf5Config, FileOrSeparateFilesAndErrorsNameTheKey) {
  ScratchDir dir;
  const IdxPair raw = idx_pair(dir, 30, 12, 3, 3);
  write_hdf5_splits(dir.file("both.h5"), *raw.train, *raw.test, Hdf5WriteOptions{});
  DataSplits s = build("data:\n  type: hdf5\n  file: " + dir.file("both.h5") +
                       "\n  mean: 0.5\n  std: 0.5\n  cache_mb: 1\n  augment: {horizontal_flip: true}\n");
  EXPECT_EQ(s.train->size(), 30u);
  EXPECT_EQ(s.test->size(), 12u);
  EXPECT_EQ(s.train->num_classes(), 3u);
  ASSERT_TRUE(s.train_augment);
  EXPECT_EQ(s.train_augment->flip(), HorizontalFlip::Yes);
  const IdxPair half = idx_pair(dir, 30, 12, 3, 3, 0.5f, 0.5f);
  expect_same_samples(*s.test, *half.test);

  // The test set from another file and other dataset names.
  {
    RawFile f(dir.file("test_only.h5"));
    const std::vector<uint8_t> images(2 * 9, 255);
    const std::vector<int32_t> labels = {2, 1};
    f.put("x", H5T_STD_U8LE, H5T_NATIVE_UINT8, {2, 1, 3, 3}, images.data());
    f.put("y", H5T_STD_I32LE, H5T_NATIVE_INT32, {2}, labels.data());
  }
  DataSplits t = build("data:\n  type: hdf5\n  train_file: " + dir.file("both.h5") +
                       "\n  test_file: " + dir.file("test_only.h5") + "\n  test_images: x\n  test_labels: y\n");
  EXPECT_EQ(t.test->size(), 2u);
  EXPECT_FALSE(t.train_augment);

  auto config_error = [&](const std::string& yaml) { return error_of<ConfigError>([&] { build(yaml); }); };
  EXPECT_THAT(config_error("data:\n  type: hdf5\n"), HasSubstr("key 'data.file': needs the HDF5 file"));
  EXPECT_THAT(config_error("data:\n  type: hdf5\n  file: " + dir.file("both.h5") + "\n  dir: /tmp\n"),
              HasSubstr("run.yaml:4: key 'data.dir': unknown key"));
  const std::string missing = error_of<DataError>([&] { build("data:\n  type: hdf5\n  file: /nonexistent.h5\n"); });
  EXPECT_THAT(missing, HasSubstr("/nonexistent.h5: no such file (named by run.yaml:3: key 'data.file')"));
  EXPECT_THAT(missing, HasSubstr("dptrain data convert"));
  const std::string missing_test = error_of<DataError>(
      [&] { build("data:\n  type: hdf5\n  file: " + dir.file("both.h5") + "\n  test_file: /nonexistent.h5\n"); });
  EXPECT_THAT(missing_test, HasSubstr("key 'data.test_file'"));
  EXPECT_THAT(error_of<DataError>([&] {
                build("data:\n  type: hdf5\n  file: " + dir.file("both.h5") + "\n  test_images: /train/labels\n");
              }),
              HasSubstr("set data.test_images"));
}

}  // namespace
}  // namespace dptrain
