#include "runtime/data/image_files_dataset.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <system_error>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/data/image_io.h"
#include "runtime/data/image_limits.h"

namespace dptrain {

namespace fs = std::filesystem;

namespace {

// Refuses, before any work starts, a file that cannot be read or does not start like a PNG or JPEG file.
void check_image_file(const std::string& path) {
  size_t bytes = 0;
  std::string why;
  if (!regular_file_size(path, &bytes, &why) && !why.empty()) throw DataError(path + ": " + why);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open the file (not readable)");
  uint8_t head[8] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const size_t got = static_cast<size_t>(in.gcount());
  // decode_image refuses what is neither, naming the file and its first bytes.
  if (detect_image_format(head, got) == ImageFormat::Unknown) decode_image(head, got, path);
}

// Every image file under `dir`, sorted; hidden files and folders are skipped.
std::vector<std::string> images_under(const std::string& dir) {
  std::vector<std::string> files;
  try {
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
      if (is_hidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file() && has_image_extension(it->path())) files.push_back(it->path().string());
    }
  } catch (const fs::filesystem_error& e) {
    throw DataError(dir + ": cannot list the folder (" + e.what() + ")");
  }
  if (files.empty()) {
    throw DataError(dir +
                    ": the folder holds no .png, .jpg or .jpeg files (searched recursively, hidden names "
                    "skipped); name image files or folders that hold some");
  }
  std::sort(files.begin(), files.end());
  return files;
}

// `fit`, when image files can be fitted to it: a (C, H, W) shape of 1 or 3 channels that dptrain decodes.
const ImageFit& checked_fit(const ImageFit& fit) {
  const Shape& s = fit.shape;
  if (s.size() != 3 || s[1] == 0 || s[2] == 0) {
    throw DataError("the model takes inputs of " + to_string(s) +
                    ", not images of (C, H, W): image files cannot be made into them");
  }
  if (s[0] != 1 && s[0] != 3) {
    throw DataError("the model takes inputs of " + to_string(s) +
                    " (C, H, W): PNG and JPEG images give 1 (grey) or 3 (RGB) channels, and cannot be converted to " +
                    std::to_string(s[0]));
  }
  if (s[1] > kMaxImageSide || s[2] > kMaxImageSide || s[1] * s[2] > kMaxImagePixels) {
    throw DataError("the model takes inputs of " + to_string(s) + ", larger than the images dptrain decodes (at most " +
                    std::to_string(kMaxImageSide) + " a side and " + std::to_string(kMaxImagePixels) + " in all)");
  }
  return fit;
}

}  // namespace

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

bool is_hidden(const fs::path& path) { return !path.filename().empty() && path.filename().string()[0] == '.'; }

std::vector<std::string> list_image_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    std::error_code ec;
    const fs::file_status status = fs::status(input, ec);
    if (!fs::exists(status)) throw DataError(input + ": no such file or folder");
    if (fs::is_directory(status)) {
      const std::vector<std::string> found = images_under(input);
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(input);
    }
  }
  for (const std::string& file : files) check_image_file(file);
  return files;
}

ImageFilesDataset::ImageFilesDataset(std::vector<std::string> paths, const ImagePreparation& preparation)
    : paths_(std::move(paths)),
      fit_(checked_fit(preparation.fit)),
      normalization_(fit_.shape[0], preparation.mean, preparation.std, "data") {}

void ImageFilesDataset::get(size_t index, float* out, int32_t* label) const {
  if (index >= paths_.size()) {
    throw DataError("image files: sample index " + std::to_string(index) + " out of range (size " +
                    std::to_string(paths_.size()) + ")");
  }
  const Shape& s = fit_.shape;
  std::vector<uint8_t> pixels(num_elements(s));
  read_fitted_image(paths_[index], fit_, pixels.data());
  normalization_.apply(pixels.data(), s[1] * s[2], out);
  *label = 0;
}

std::string ImageFilesDataset::describe() const {
  std::ostringstream out;
  out << paths_.size() << " image files fitted to " << to_string(fit_.shape) << "; ";
  if (fit_.shorter_side > 0) {
    out << "shorter side resized to " << fit_.shorter_side << ", centre " << fit_.shape[1] << "x" << fit_.shape[2]
        << " cut out";
  } else {
    out << (fit_.resize == ResizeMode::Crop ? "shorter side resized, centre-cropped" : "stretched") << " to size";
  }
  return out.str();
}

}  // namespace dptrain
