// make_datasets: the `data:` section of a run config turned into training and test sets.
#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/data/augment.h"
#include "runtime/data/dataset.h"
#include "runtime/data/hdf5_dataset.h"
#include "runtime/data/idx.h"
#include "runtime/data/idx_dataset.h"
#include "runtime/data/image_files_dataset.h"
#include "runtime/data/image_folder_dataset.h"
#include "runtime/data/image_limits.h"
#include "runtime/data/synthetic_dataset.h"

namespace dptrain {

namespace {

// Classes a data set may have: 0 (found from the labels or the file) or up to 2^24.
const CountRange kClasses{1, size_t{1} << 24, "classes", ZeroIs::Off};
// The values of data.type.
const std::vector<std::string> kDataTypes = {"idx", "synthetic", "image_folder", "hdf5"};
// The decoded-image cache: 0 (none) or up to 1 TiB.
const CountRange kCacheMiB{1, size_t{1} << 20, "MiB", ZeroIs::Off};

const char* const kDefaultDir = "/usr/share/datasets/fashion-mnist";

// Per-channel normalisation as written in the config, checked against the channel count.
struct NormalizationKeys {
  std::vector<double> mean;
  std::vector<double> std;
};

NormalizationKeys read_normalization(ConfigMap& data) {
  NormalizationKeys n{data.get_double_list("mean", std::vector<double>{0.0}),
                      data.get_double_list("std", std::vector<double>{1.0})};
  if (n.mean.empty()) data.fail("mean", "needs at least one number (one per channel, or one for all)");
  if (n.std.empty()) data.fail("std", "needs at least one number (one per channel, or one for all)");
  for (double s : n.std) {
    if (!(s > 0.0)) data.fail("std", "every entry must be > 0, got " + std::to_string(s));
  }
  return n;
}

void check_channels(ConfigMap& data, const NormalizationKeys& n, size_t channels, const std::string& why) {
  const std::pair<const char*, size_t> lists[] = {{"mean", n.mean.size()}, {"std", n.std.size()}};
  for (const auto& [key, got] : lists) {
    if (got != 1 && got != channels) {
      data.fail(key, "has " + std::to_string(got) + " entries; expected 1 or one per channel (" +
                         std::to_string(channels) + why + ")");
    }
  }
}

std::vector<float> to_floats(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Reads the IDX file named by `key` (relative to `dir` unless absolute).
IdxArray read_idx_key(ConfigMap& data, const std::string& dir, const std::string& key, const char* fallback) {
  const std::string name = data.get_string(key, std::string(fallback));
  if (name.empty()) data.fail(key, "needs a file name");
  const std::string path = (std::filesystem::path(dir) / name).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    const std::string hint = idx_install_hint(path);
    throw DataError(path + ": no such file (named by " + data.where(key) + ", relative to data.dir)" +
                    (hint.empty() ? "" : "; " + hint));
  }
  size_t size = 0;
  std::string why;
  if (!regular_file_size(path, &size, &why) && !why.empty()) {
    throw DataError(path + ": " + why + " (named by " + data.where(key) + "); point it at an IDX file");
  }
  return read_idx(path);
}

std::unique_ptr<Dataset> make_idx_part(ConfigMap& data, const std::string& dir, const char* images_key,
                                       const char* images_file, const char* labels_key, const char* labels_file,
                                       const char* cap_key, float mean, float std, size_t classes) {
  const size_t cap = data.get_size(cap_key, size_t{0});
  IdxArray images = read_idx_key(data, dir, images_key, images_file);
  IdxArray labels = read_idx_key(data, dir, labels_key, labels_file);
  if (!images.dims.empty() && cap > images.dims[0]) {
    data.fail(cap_key, "asks for " + std::to_string(cap) + " samples, but " + images.file + " holds only " +
                           std::to_string(images.dims[0]));
  }
  return std::make_unique<IdxDataset>(std::move(images), std::move(labels), mean, std, classes, cap);
}

DataSplits make_idx(ConfigMap& data, const NormalizationKeys& norm) {
  const std::string dir = data.get_string("dir", std::string(kDefaultDir));
  const size_t classes = data.get_count("classes", size_t{10}, kClasses);  // 0: max training label + 1
  check_channels(data, norm, 1, " for IDX images, which have one");
  const float mean = static_cast<float>(norm.mean[0]), std = static_cast<float>(norm.std[0]);

  DataSplits out;
  out.train = make_idx_part(data, dir, "train_images", "train-images-idx3-ubyte.gz", "train_labels",
                            "train-labels-idx1-ubyte.gz", "train_samples", mean, std, classes);
  out.test = make_idx_part(data, dir, "test_images", "t10k-images-idx3-ubyte.gz", "test_labels",
                           "t10k-labels-idx1-ubyte.gz", "test_samples", mean, std, out.train->num_classes());
  if (out.train->sample_shape() != out.test->sample_shape()) {
    const auto& train = static_cast<const IdxDataset&>(*out.train);
    const auto& test = static_cast<const IdxDataset&>(*out.test);
    throw DataError(train.images_file() + " holds images of " + to_string(train.sample_shape()) + " but " +
                    test.images_file() + " holds images of " + to_string(test.sample_shape()) +
                    "; training and test images must have the same size");
  }
  return out;
}

DataSplits make_synthetic(ConfigMap& data, const NormalizationKeys& norm, uint64_t seed) {
  SyntheticSpec train;
  train.num_samples = data.get_size("train_samples", size_t{60000});
  const size_t test_samples = data.get_size("test_samples", size_t{10000});
  train.sample_shape = data.get_size_list("shape", std::vector<size_t>{1, 28, 28});
  train.num_classes = data.get_count("classes", size_t{10}, kClasses);
  const double noise = data.get_double("noise", 1.0);

  if (train.num_samples == 0) data.fail("train_samples", "must be at least 1");
  if (test_samples == 0) data.fail("test_samples", "must be at least 1");
  const Shape& s = train.sample_shape;
  if (s.size() != 3 || s[0] == 0 || s[1] == 0 || s[2] == 0) {
    data.fail("shape", "expected [C, H, W] with every entry > 0, got " + to_string(s));
  }
  if (train.num_classes == 0) data.fail("classes", "must be at least 1");
  if (noise < 0.0) data.fail("noise", "must be >= 0, got " + std::to_string(noise));
  check_channels(data, norm, s[0], "");
  train.noise = static_cast<float>(noise);
  train.mean = to_floats(norm.mean);
  train.std = to_floats(norm.std);

  SyntheticSpec test = train;
  test.num_samples = test_samples;
  DataSplits out;
  out.train = std::make_unique<SyntheticDataset>(train, seed, SyntheticSplit::Train);
  out.test = std::make_unique<SyntheticDataset>(test, seed, SyntheticSplit::Test);
  return out;
}

// The folder named by `key`, which must exist.
std::string existing_folder(ConfigMap& data, const std::string& key, const std::string& fallback) {
  const std::string dir = data.get_string(key, fallback);
  if (dir.empty()) data.fail(key, "needs a folder with one sub-folder of images per class");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw DataError(dir + ": no such folder (named by " + data.where(key) +
                    "); expected one sub-folder of PNG or JPEG images per class (DIR/CLASS/IMAGE.png); "
                    "point it at yours, e.g. --set data." +
                    key + "=/path/to/images");
  }
  return dir;
}

// Whether data.augment asks for a random resized crop (read here without marking anything as known).
bool random_resized_crop_configured(ConfigMap& data) {
  return data.has("augment") && data.get_map("augment").has("random_resized_crop");
}

// The image-folder keys of `data` that say how images are fitted and read: the options of the training
// images and of the test images (fitted with data.eval_resize).
struct FolderOptions {
  ImageFolderOptions train, test;
};

FolderOptions read_folder_options(ConfigMap& data, const NormalizationKeys& norm) {
  ImageFolderOptions options;
  options.shape = data.get_size_list("shape");
  const Shape& s = options.shape;
  if (s.size() != 3 || (s[0] != 1 && s[0] != 3) || s[1] == 0 || s[2] == 0) {
    data.fail("shape", "expected [C, H, W] with C = 1 (grey) or 3 (RGB) and H, W > 0, got " + to_string(s));
  }
  if (s[1] > kMaxImageSide || s[2] > kMaxImageSide || s[1] * s[2] > kMaxImagePixels) {
    data.fail("shape", "asks for images of " + std::to_string(s[1]) + " x " + std::to_string(s[2]) +
                           " pixels, more than dptrain decodes (at most " + std::to_string(kMaxImageSide) +
                           " a side and " + std::to_string(kMaxImagePixels) + " in all)");
  }
  check_channels(data, norm, s[0], "");
  const std::string resize = data.get_choice("resize", {"crop", "stretch"}, std::string("crop"));
  options.resize = resize == "crop" ? ResizeMode::Crop : ResizeMode::Stretch;
  const std::string on_bad_image = data.get_choice("on_bad_image", {"fail", "skip"}, std::string("fail"));
  options.on_bad_image = on_bad_image == "fail" ? BadImagePolicy::Fail : BadImagePolicy::Skip;
  options.cache_mb = data.get_count("cache_mb", size_t{1024}, kCacheMiB);
  const size_t eval_resize = data.get_size("eval_resize", size_t{0});
  if (data.has("eval_resize")) {
    if (eval_resize < std::max(s[1], s[2])) {
      data.fail("eval_resize", "is the length the shorter side is resized to before the centre " +
                                   std::to_string(s[1]) + "x" + std::to_string(s[2]) +
                                   " of data.shape is cut out, so it must be at least " +
                                   std::to_string(std::max(s[1], s[2])) + ", got " + std::to_string(eval_resize));
    }
    if (options.resize != ResizeMode::Crop) {
      data.fail("eval_resize",
                "resizes the shorter side and cuts out the centre, which contradicts "
                "data.resize: stretch; remove one of the two");
    }
  }
  // Test images are always fitted with eval_resize; training images too unless a random resized crop takes
  // its window from the whole image instead.
  FolderOptions out{options, options};
  out.test.shorter_side = eval_resize;
  if (!random_resized_crop_configured(data)) out.train.shorter_side = eval_resize;
  return out;
}

DataSplits make_image_folder(ConfigMap& data, const NormalizationKeys& norm, uint64_t seed) {
  const FolderOptions both = read_folder_options(data, norm);
  const ImageFolderOptions& options = both.train;
  const ImageFolderOptions& test_options = both.test;
  const bool separate_test = data.has("test_dir");
  if (separate_test && data.has("validation_fraction")) {
    data.fail("validation_fraction",
              "cannot be combined with data.test_dir: with a test folder, every image of "
              "data.dir trains; remove one of the two");
  }
  const double fraction = data.get_double_checked(
      "validation_fraction", 0.2, [](double v) { return v >= 0.0 && v < 1.0; }, "must be in [0, 1)");
  const std::string dir = existing_folder(data, "dir", "");
  const std::string test_dir = separate_test ? existing_folder(data, "test_dir", "") : "";
  const std::vector<float> mean = to_floats(norm.mean), std = to_floats(norm.std);

  auto folder = std::make_shared<const ImageFolder>(dir, options);
  DataSplits out;
  if (!separate_test) {
    // The validation part is fitted differently from the training part: the folder is decoded a second time.
    auto eval_folder = test_options.shorter_side == options.shorter_side
                           ? folder
                           : std::make_shared<const ImageFolder>(dir, test_options);
    if (eval_folder->size() != folder->size()) {
      throw DataError(dir +
                      ": the images changed while the folder was read twice (for training and for "
                      "data.eval_resize); run again");
    }
    FolderSplit split = split_image_folder(*folder, fraction, seed);
    const size_t train_size = split.train.size(), validation_size = split.validation.size();
    if (validation_size == 0 || train_size == 0) {
      data.fail("validation_fraction",
                format_number(fraction) + " of the " + std::to_string(folder->size()) + " images of " + dir +
                    " leaves " + (validation_size == 0 ? "no test image" : "no training image") +
                    ": choose a fraction that leaves both, or give data.test_dir");
    }
    out.train = std::make_unique<ImageFolderDataset>(folder, std::move(split.train), FolderPart::Train, validation_size,
                                                     mean, std);
    out.test = std::make_unique<ImageFolderDataset>(eval_folder, std::move(split.validation), FolderPart::Validation,
                                                    train_size, mean, std);
    return out;
  }
  auto test_folder = std::make_shared<const ImageFolder>(test_dir, test_options);
  if (test_folder->class_names() != folder->class_names()) {
    throw DataError(test_dir + " has class folders (" + std::to_string(test_folder->class_names().size()) +
                    ") that differ from those of " + dir + " (" + std::to_string(folder->class_names().size()) +
                    "); data.test_dir must hold the same class sub-folders as data.dir");
  }
  auto all = [](const ImageFolder& f) {
    std::vector<uint32_t> members(f.size());
    for (size_t i = 0; i < members.size(); ++i) members[i] = static_cast<uint32_t>(i);
    return members;
  };
  out.train = std::make_unique<ImageFolderDataset>(folder, all(*folder), FolderPart::Whole, 0, mean, std);
  out.test = std::make_unique<ImageFolderDataset>(test_folder, all(*test_folder), FolderPart::Whole, 0, mean, std);
  return out;
}

DataSplits make_hdf5(ConfigMap& data, const NormalizationKeys& norm) {
  const std::string file = data.get_string("file", std::string());
  const std::string train_file = data.get_string("train_file", file);
  const std::string test_file = data.get_string("test_file", file);
  if (train_file.empty()) data.fail("file", "needs the HDF5 file holding both sets (or train_file and test_file)");
  if (test_file.empty()) data.fail("test_file", "needs the HDF5 file of the test set (or set data.file for both)");
  Hdf5Source train{train_file, data.get_string("train_images", std::string("/train/images")),
                   data.get_string("train_labels", std::string("/train/labels")), "data.train_images",
                   "data.train_labels"};
  Hdf5Source test{test_file, data.get_string("test_images", std::string("/test/images")),
                  data.get_string("test_labels", std::string("/test/labels")), "data.test_images", "data.test_labels"};
  const size_t classes = data.get_count("classes", size_t{0}, kClasses);  // 0: the file's num_classes, else max label + 1
  const size_t cache_mb = data.get_count("cache_mb", size_t{1024}, kCacheMiB);
  for (const auto& [key, path] :
       {std::pair<const char*, std::string>{data.has("train_file") ? "train_file" : "file", train_file},
        {data.has("test_file") ? "test_file" : "file", test_file}}) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      throw DataError(path + ": no such file (named by " + data.where(key) +
                      "); write one with dptrain data convert, or point the key at yours");
    }
  }
  const std::vector<float> mean = to_floats(norm.mean), std = to_floats(norm.std);
  DataSplits out;
  out.train = std::make_unique<Hdf5Dataset>(train, mean, std, classes, cache_mb);
  out.test = std::make_unique<Hdf5Dataset>(test, mean, std, classes > 0 ? classes : out.train->num_classes(), cache_mb);
  if (out.train->sample_shape() != out.test->sample_shape()) {
    throw DataError(train_file + ":" + train.images + " holds images of " + to_string(out.train->sample_shape()) +
                    " but " + test_file + ":" + test.images + " holds images of " +
                    to_string(out.test->sample_shape()) + "; training and test images must have the same size");
  }
  return out;
}

}  // namespace

ImagePreparation eval_image_preparation(ConfigMap& data, uint64_t seed, const Shape& input_shape) {
  const std::string type = data.get_choice("type", kDataTypes, std::string("idx"));
  const NormalizationKeys norm = read_normalization(data);
  ImagePreparation out;
  out.mean = to_floats(norm.mean);
  out.std = to_floats(norm.std);
  if (type == "image_folder") {
    out.fit = read_folder_options(data, norm).test;
    if (!input_shape.empty() && out.fit.shape != input_shape) {
      data.fail("shape", "is " + to_string(out.fit.shape) + ", but the model takes inputs of " +
                             to_string(input_shape) + "; leave data.shape as the run trained with it");
    }
    return out;
  }
  // Samples at their size: another image is scaled to cover it and its centre cut out.
  out.fit.resize = ResizeMode::Crop;
  out.fit.shape = input_shape;
  if (out.fit.shape.empty() && type == "synthetic") {
    out.fit.shape = data.get_size_list("shape", std::vector<size_t>{1, 28, 28});
  }
  if (out.fit.shape.empty()) out.fit.shape = make_datasets(data, seed).train->sample_shape();  // idx, hdf5: the files
  return out;
}

DataSplits make_datasets(ConfigMap& data, uint64_t seed) {
  const std::string type = data.get_choice("type", kDataTypes, std::string("idx"));
  const NormalizationKeys norm = read_normalization(data);
  if (type != "image_folder" && data.has("eval_resize")) {
    data.fail("eval_resize", "applies to data.type: image_folder only (the images of a " + type +
                                 " data set are already at their size); remove it");
  }
  DataSplits out;
  if (type == "synthetic") {
    out = make_synthetic(data, norm, seed);
  } else if (type == "image_folder") {
    out = make_image_folder(data, norm, seed);
  } else if (type == "hdf5") {
    out = make_hdf5(data, norm);
  } else {
    out = make_idx(data, norm);
  }
  ConfigMap augment = data.get_map("augment");
  out.train_augment =
      make_augmentation(augment, out.train->sample_shape()[0], to_floats(norm.mean), to_floats(norm.std));
  return out;
}

}  // namespace dptrain
