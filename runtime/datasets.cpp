// make_datasets: the `data:` section of a run config turned into training and test sets.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "runtime/dataset.h"
#include "runtime/errors.h"
#include "runtime/idx.h"
#include "runtime/idx_dataset.h"
#include "runtime/synthetic_dataset.h"

namespace dptrain {

namespace {

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
  const size_t classes = data.get_size("classes", size_t{10});  // 0: max training label + 1
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
  train.num_classes = data.get_size("classes", size_t{10});
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

}  // namespace

DataSplits make_datasets(ConfigMap& data, uint64_t seed) {
  const std::string type = data.get_choice("type", {"idx", "synthetic"}, std::string("idx"));
  const NormalizationKeys norm = read_normalization(data);
  if (type == "synthetic") return make_synthetic(data, norm, seed);
  return make_idx(data, norm);
}

}  // namespace dptrain
