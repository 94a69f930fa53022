// Sizes read from data files are checked against what the file can hold before anything is allocated:
// IDX headers and the gzip stream behind them, HDF5 dataset shapes, image headers, data.shape; and
// what is not a regular file (a directory, /dev/zero) is refused at once, naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/core/errors.h"
#include "runtime/data/dataset.h"
#include "runtime/data/hdf5_dataset.h"
#include "runtime/data/idx.h"
#include "runtime/data/image_folder_dataset.h"
#include "runtime/data/image_io.h"
#include "tests/runtime/data/test_idx_files.h"
#include "tests/runtime/data/test_image_files.h"
#include "tests/test_util.h"

namespace dptrain {
namespace DPTRAIN_TEST_UNIT {

using test_util::error_of;
using testing::Gzip;
using ::testing::HasSubstr;
using testing::idx_bytes;
using testing::ScratchDir;
using testing::write_file;

// ---- IDX -------------------------------------------------------------------------------------------

TEST(BoundedIdx, AGzipStreamInflatingBeyondItsHeaderStopsThere) {
  ScratchDir dir;
  std::vector<uint8_t> bytes = idx_bytes({10}, std::vector<uint8_t>(10, 1));
  bytes.resize(bytes.size() + (64 << 20), 0);  // 64 MiB more than the header declares, a few KiB gzipped
  const std::string path = dir.file("bomb.gz");
  write_file(path, bytes, Gzip::Yes);
  const std::string msg = error_of<DataError>([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": the gzip stream inflates beyond the 18 bytes its IDX header declares"));
}

TEST(BoundedIdx, AGzipHeaderDeclaringMoreThanTheStreamCanHoldIsRefused) {
  ScratchDir dir;
  const std::string path = dir.file("huge.gz");
  write_file(path, idx_bytes({1u << 31, 28, 28}, std::vector<uint8_t>(100, 3)), Gzip::Yes);
  const std::string msg = error_of<DataError>([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": the IDX header declares dimensions (2147483648, 28, 28)"));
  EXPECT_THAT(msg, HasSubstr("compressed bytes can hold"));
}

TEST(BoundedIdx, APlainHeaderClaiming2To31ImagesInASmallFileIsTruncated) {
  ScratchDir dir;
  const std::string path = dir.file("huge-images");
  write_file(path, idx_bytes({1u << 31, 28, 28}, std::vector<uint8_t>(1000, 3)), Gzip::No);
  const std::string msg = error_of<DataError>([&] { read_idx(path); });
  EXPECT_THAT(msg, HasSubstr(path + ": truncated: expected 1683627180032 bytes of image data"));
}

TEST(BoundedIdx, ADirectoryOrADeviceAsTheFileIsNamedAtOnce) {
  ScratchDir dir;
  EXPECT_THAT(error_of<DataError>([&] { read_idx(dir.path().string()); }),
              HasSubstr(dir.path().string() + ": is a directory, not a file"));
  EXPECT_THAT(error_of<DataError>([&] { read_idx("/dev/zero"); }),
              HasSubstr("/dev/zero: is a device, not a regular file"));
}

TEST(BoundedIdx, ADirectoryNamedByTheConfigNamesTheKey) {
  ScratchDir dir;
  std::filesystem::create_directories(dir.file("train-images"));
  ConfigMap top = ConfigMap::parse(
      "data:\n  type: idx\n  dir: " + dir.path().string() + "\n  train_images: train-images\n", "run.yaml");
  ConfigMap data = top.get_map("data");
  const std::string msg = error_of<DataError>([&] { make_datasets(data, 1); });
  EXPECT_THAT(msg, HasSubstr(dir.file("train-images") + ": is a directory, not a file (named by"));
  EXPECT_THAT(msg, HasSubstr("train_images"));
}

// ---- HDF5 ------------------------------------------------------------------------------------------

// A chunked dataset `name` of `type` whose extent is set to `dims` without writing anything: the file
// stays a few KiB whatever the shape says.
void put_unwritten(hid_t file, const char* name, hid_t type, std::vector<hsize_t> dims) {
  std::vector<hsize_t> none(dims.size(), 0), unlimited(dims.size(), H5S_UNLIMITED), chunk = dims;
  chunk[0] = 1;
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), none.data(), unlimited.data());
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  const hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(d, 0) << name;
  EXPECT_GE(H5Dset_extent(d, dims.data()), 0) << name;
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
}

TEST(BoundedHdf5, ASmallFileDeclaring2To31ImagesIsRefusedBeforeReading) {
  ScratchDir dir;
  const std::string path = dir.file("huge.h5");
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  put_unwritten(file, "images", H5T_STD_U8LE, {hsize_t{1} << 31, 28, 28});
  put_unwritten(file, "labels", H5T_STD_U8LE, {hsize_t{1} << 31});
  H5Fclose(file);
  ASSERT_LT(std::filesystem::file_size(path), 400u << 10);
  const Hdf5Source source{path, "/images", "/labels", "data.train_images", "data.train_labels"};
  const std::string msg = error_of<DataError>([&] { Hdf5Dataset(source, {0.0f}, {1.0f}, 0, 64); });
  EXPECT_THAT(msg, HasSubstr(path + ": dataset '/images' declares shape (2147483648, 28, 28)"));
  EXPECT_THAT(msg, HasSubstr("the file is damaged or was not written completely"));
}

TEST(BoundedHdf5, ANegativeOrZeroNumClassesAttributeIsRefused) {
  for (const int64_t classes : {int64_t{-3}, int64_t{0}}) {
    ScratchDir dir;
    const std::string path = dir.file("classes.h5");
    const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const std::vector<uint8_t> images(4 * 2 * 2, 7), labels{0, 1, 0, 1};
    const hsize_t image_dims[] = {4, 2, 2}, label_dims[] = {4};
    for (const auto& [name, rank, dims, data] :
         {std::tuple<const char*, int, const hsize_t*, const void*>{"images", 3, image_dims, images.data()},
          {"labels", 1, label_dims, labels.data()}}) {
      const hid_t space = H5Screate_simple(rank, dims, nullptr);
      const hid_t d = H5Dcreate2(file, name, H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
      H5Dclose(d);
      H5Sclose(space);
    }
    const hid_t scalar = H5Screate(H5S_SCALAR);
    const hid_t attr = H5Acreate2(file, "num_classes", H5T_STD_I64LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_INT64, &classes);
    H5Aclose(attr);
    H5Sclose(scalar);
    H5Fclose(file);
    const Hdf5Source source{path, "/images", "/labels", "data.train_images", "data.train_labels"};
    const std::string msg = error_of<DataError>([&] { Hdf5Dataset(source, {0.0f}, {1.0f}, 0, 64); });
    EXPECT_THAT(msg, HasSubstr(path + ": the root attribute num_classes is " + std::to_string(classes)));
    EXPECT_THAT(msg, HasSubstr("data.classes"));
    EXPECT_EQ(Hdf5Dataset(source, {0.0f}, {1.0f}, 2, 64).num_classes(), 2u);  // data.classes overrides it
  }
}

TEST(BoundedHdf5, ADirectoryOrADeviceAsTheFileIsNamedAtOnce) {
  ScratchDir dir;
  const Hdf5Source folder{dir.path().string(), "/images", "/labels", "data.train_images", "data.train_labels"};
  EXPECT_THAT(error_of<DataError>([&] { Hdf5Dataset(folder, {0.0f}, {1.0f}, 0, 64); }),
              HasSubstr(dir.path().string() + ": is a directory, not a file"));
  const Hdf5Source zero{"/dev/zero", "/images", "/labels", "data.train_images", "data.train_labels"};
  EXPECT_THAT(error_of<DataError>([&] { Hdf5Dataset(zero, {0.0f}, {1.0f}, 0, 64); }),
              HasSubstr("/dev/zero: is a device, not a regular file"));
}

// ---- images ----------------------------------------------------------------------------------------

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// A PNG signature and IHDR chunk declaring width x height RGB, with a valid CRC, and no image data.
std::vector<uint8_t> png_header(uint32_t width, uint32_t height) {
  std::vector<uint8_t> out{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  put_u32(out, 13);
  const size_t chunk = out.size();
  out.insert(out.end(), {'I', 'H', 'D', 'R'});
  put_u32(out, width);
  put_u32(out, height);
  out.insert(out.end(), {8, 2, 0, 0, 0});  // 8 bits, RGB, deflate, no filter, no interlace
  put_u32(out, static_cast<uint32_t>(crc32(0, out.data() + chunk, 17)));
  return out;
}

TEST(BoundedImages, APngHeaderWithHugeDimensionsIsRefusedBeforeDecoding) {
  const std::vector<uint8_t> absurd = png_header(100000, 100000);
  EXPECT_THAT(error_of<DataError>([&] { decode_image(absurd.data(), absurd.size(), "huge.png"); }),
              HasSubstr("huge.png: the PNG header declares 100000 x 100000 pixels, more than dptrain decodes"));
  const std::vector<uint8_t> small_file = png_header(16000, 16000);
  EXPECT_THAT(error_of<DataError>([&] { decode_image(small_file.data(), small_file.size(), "tiny.png"); }),
              HasSubstr("tiny.png: the PNG header declares 16000 x 16000 pixels, more than its 33 bytes can hold"));
}

TEST(BoundedImages, AJpegHeaderDeclaringMoreThanItsBytesCanHoldIsRefused) {
  Image image;
  image.width = image.height = 8;
  image.channels = 1;
  image.pixels.assign(64, 128);
  std::vector<uint8_t> jpeg = encode_jpeg(image);
  bool patched = false;
  for (size_t i = 0; i + 8 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {  // SOF0: length, precision, height, width
      jpeg[i + 5] = jpeg[i + 7] = 0x3e;            // 16000 = 0x3e80: within the decoder's limits
      jpeg[i + 6] = jpeg[i + 8] = 0x80;
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  EXPECT_THAT(error_of<DataError>([&] { decode_image(jpeg.data(), jpeg.size(), "big.jpg"); }),
              HasSubstr("big.jpg: the JPEG header declares 16000 x 16000 pixels, more than its"));
}

TEST(BoundedImages, ADirectoryOrADeviceAsAnImageIsNamedAtOnce) {
  ScratchDir dir;
  EXPECT_THAT(error_of<DataError>([&] { read_image(dir.path().string()); }), HasSubstr(": is a directory"));
  EXPECT_THAT(error_of<DataError>([&] { read_image("/dev/zero"); }), HasSubstr("/dev/zero: is a device"));
}

TEST(BoundedImages, AHugeDataShapeForAnImageFolderNamesDataShape) {
  ScratchDir dir;
  testing::FolderRecipe recipe;
  recipe.classes = 2;
  recipe.per_class = 2;
  recipe.size = 8;
  testing::write_image_folder(dir.path(), recipe);
  ImageFolderOptions options;
  options.shape = {3, 100000, 100000};
  EXPECT_THAT(error_of<ShapeError>([&] { ImageFolder(dir.path().string(), options); }),
              HasSubstr("data.shape (3, 100000, 100000) asks for images of 100000 x 100000 pixels"));

  ConfigMap top = ConfigMap::parse(
      "data:\n  type: image_folder\n  dir: " + dir.path().string() + "\n  shape: [3, 100000, 100000]\n", "run.yaml");
  ConfigMap data = top.get_map("data");
  const std::string msg = error_of<ConfigError>([&] { make_datasets(data, 1); });
  EXPECT_THAT(msg, HasSubstr("data.shape"));
  EXPECT_THAT(msg, HasSubstr("asks for images of 100000 x 100000 pixels, more than dptrain decodes"));
}

}  // namespace
}  // namespace dptrain
