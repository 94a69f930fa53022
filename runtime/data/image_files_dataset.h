// ImageFilesDataset: PNG and JPEG files named one by one (`dptrain predict`), each read, fitted and
// normalised as a run's evaluation prepares its test images; list_image_files finds them in folders;
// eval_image_preparation reads from a run's `data:` section how its evaluation prepares images.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/config_map.h"
#include "runtime/data/dataset.h"
#include "runtime/data/image_resize.h"
#include "runtime/data/pixel_normalization.h"

namespace dptrain {

// Whether `path`'s file name ends in .png, .jpg or .jpeg, in any case.
bool has_image_extension(const std::filesystem::path& path);
// Whether `path`'s file name starts with '.': hidden files and folders, which image folders skip.
bool is_hidden(const std::filesystem::path& path);

// The image files that `inputs` name, in their order: a file as it is (whatever its name; its bytes tell
// the format when it is read), a folder as every .png, .jpg and .jpeg file under it (recursively, hidden
// names skipped), sorted by path. DataError naming the path for one that does not exist, a folder holding
// no image file, or a folder that cannot be listed.
std::vector<std::string> list_image_files(const std::vector<std::string>& inputs);

// How a run's evaluation turns an image file into a sample: fitted to `fit`, then normalised.
struct ImagePreparation {
  ImageFit fit;
  std::vector<float> mean, std;  // 1 or C entries each
};

// The preparation of the test images of a run whose config's `data:` section is `data` and whose model
// takes inputs of `input_shape` ((C, H, W); empty when not known). For data.type image_folder: data.shape,
// data.resize and data.eval_resize, as the test images are fitted (a data.shape other than a known
// `input_shape` is a ConfigError). For the other types, whose samples come at their size: `input_shape`,
// shorter side resized and the centre cut out; without one, data.shape (synthetic) or the shape of the
// data set's files (idx, hdf5: read for it, so they must exist). data.mean and data.std in every case.
// Reads only these keys (the caller does not finish() `data`). Defined beside make_datasets (datasets.cpp).
ImagePreparation eval_image_preparation(ConfigMap& data, uint64_t seed, const Shape& input_shape);

// Image files as samples, labelled 0 (the files carry no label). Each get() reads and decodes its file.
class ImageFilesDataset : public Dataset {
 public:
  // Throws DataError when images cannot be prepared for `preparation.fit.shape`: PNG and JPEG files give
  // 1 (grey) or 3 (RGB) channels, so a shape of other channels cannot be made from them; or for a bad
  // normalisation.
  ImageFilesDataset(std::vector<std::string> paths, const ImagePreparation& preparation);

  size_t size() const override { return paths_.size(); }
  Shape sample_shape() const override { return fit_.shape; }
  size_t num_classes() const override { return 0; }
  // DataError naming the file when it cannot be read or is not a PNG or JPEG file.
  void get(size_t index, float* out, int32_t* label) const override;
  // "42 image files fitted to (3, 32, 32); shorter side resized, centre-cropped"
  std::string describe() const override;
  LoadCost load_cost() const override { return LoadCost::Decode; }

  const std::string& path(size_t i) const { return paths_[i]; }

 private:
  std::vector<std::string> paths_;
  ImageFit fit_;
  PixelNormalization normalization_;
};

}  // namespace dptrain
