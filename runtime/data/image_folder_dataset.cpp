#include "runtime/data/image_folder_dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/core/rng.h"
#include "runtime/data/image_files_dataset.h"
#include "runtime/data/image_limits.h"

namespace dptrain {

namespace fs = std::filesystem;

namespace {

std::string megabytes(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

// "a, b, c" or, for many, the first names then "... (+N more)".
std::string list_names(const std::vector<std::string>& names, size_t shown = 10) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += ", ... (+" + std::to_string(names.size() - shown) + " more)";
  return out;
}

}  // namespace

ImageFolder::ImageFolder(std::string dir, const ImageFolderOptions& options) : dir_(std::move(dir)), options_(options) {
  const Shape& s = options_.shape;
  if (s.size() != 3 || (s[0] != 1 && s[0] != 3) || s[1] == 0 || s[2] == 0) {
    throw ShapeError("image folder " + dir_ + ": sample shape must be (C, H, W) with C = 1 or 3 and H, W > 0, got " +
                     to_string(s));
  }
  if (options_.shorter_side > 0 &&
      (options_.resize != ResizeMode::Crop || options_.shorter_side < std::max(s[1], s[2]))) {
    throw ShapeError("image folder " + dir_ + ": resizing the shorter side to " +
                     std::to_string(options_.shorter_side) +
                     " needs ResizeMode::Crop and at least the sample's height and width, " + to_string(s));
  }
  if (s[1] > kMaxImageSide || s[2] > kMaxImageSide || s[1] * s[2] > kMaxImagePixels) {
    throw ShapeError("image folder " + dir_ + ": data.shape " + to_string(s) + " asks for images of " +
                     std::to_string(s[1]) + " x " + std::to_string(s[2]) +
                     " pixels, more than dptrain decodes (at most " + std::to_string(kMaxImageSide) + " a side and " +
                     std::to_string(kMaxImagePixels) + " in all); lower data.shape");
  }
  sample_bytes_ = checked_bytes({s[0], s[1], s[2]}, "one image of data.shape " + to_string(s), "data.shape");
  scan();
  decode_all();
}

void ImageFolder::scan() {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) {
    throw DataError(dir_ + (fs::exists(dir_, ec) ? ": not a folder" : ": no such folder") +
                    "; expected a folder with one sub-folder of PNG or JPEG images per class (DIR/CLASS/IMAGE.png)");
  }
  try {
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.is_directory() && !is_hidden(entry.path())) class_names_.push_back(entry.path().filename().string());
    }
    std::sort(class_names_.begin(), class_names_.end());
    if (class_names_.empty()) {
      throw DataError(dir_ +
                      ": holds no class sub-folders; expected one sub-folder of PNG or JPEG images per class "
                      "(DIR/CLASS/IMAGE.png), named after the class");
    }
    for (size_t k = 0; k < class_names_.size(); ++k) {
      const fs::path class_dir = fs::path(dir_) / class_names_[k];
      std::vector<std::string> files;
      for (auto it = fs::recursive_directory_iterator(class_dir); it != fs::recursive_directory_iterator(); ++it) {
        if (is_hidden(it->path())) {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && has_image_extension(it->path())) files.push_back(it->path().string());
      }
      if (files.empty()) {
        throw DataError(class_dir.string() +
                        ": class folder holds no .png, .jpg or .jpeg files (add images or remove "
                        "the folder: every sub-folder of " +
                        dir_ + " is a class)");
      }
      std::sort(files.begin(), files.end());
      for (auto& f : files) {
        paths_.push_back(std::move(f));
        labels_.push_back(static_cast<int32_t>(k));
      }
    }
  } catch (const fs::filesystem_error& e) {
    throw DataError(dir_ + ": cannot list the image folder (" + e.what() + ")");
  }
}

void ImageFolder::decode_all() {
  const size_t n = paths_.size();
  const Shape& s = options_.shape;
  const size_t cache_limit = options_.cache_mb > SIZE_MAX >> 20 ? SIZE_MAX : options_.cache_mb << 20;
  const bool cache = options_.cache_mb > 0 && n <= cache_limit / sample_bytes_;
  size_t threads = options_.threads > 0 ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min({threads, n, size_t{16}});
  if (cache) {
    reserve(n * sample_bytes_,
            "the decoded images of " + dir_ + " (" + std::to_string(n) + " of data.shape " + to_string(s) +
                ", kept as they fit in data.cache_mb)",
            "data.cache_mb");
    cache_.assign(n * sample_bytes_, 0);
  } else {
    reserve(checked_bytes({threads, sample_bytes_}, "the decoding buffers", "data.shape"),
            "the decoding buffers of " + dir_ + " (" + std::to_string(threads) + " images of data.shape " +
                to_string(s) + ")",
            "data.shape");
  }
  std::vector<std::string> errors(n);  // why image i failed, or empty

  // A bad image is recorded and decoding goes on; anything else stops every thread and is rethrown here.
  std::atomic<size_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  auto work = [&] {
    try {
      std::vector<uint8_t> scratch(cache ? 0 : sample_bytes_);
      for (size_t i; (i = next.fetch_add(1)) < n;) {
        try {
          read_fitted_image(paths_[i], options_, cache ? cache_.data() + i * sample_bytes_ : scratch.data());
        } catch (const Error& e) {  // a file that cannot be read, decoded or fitted
          errors[i] = e.what();
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next.store(n);
    }
  };
  std::vector<std::thread> pool;
  try {
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had: the ones started, and this one, do the work.
  }
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);

  const size_t bad =
      static_cast<size_t>(std::count_if(errors.begin(), errors.end(), [](auto& e) { return !e.empty(); }));
  if (bad == 0) return;
  if (options_.on_bad_image == BadImagePolicy::Fail) {
    const auto first = std::find_if(errors.begin(), errors.end(), [](auto& e) { return !e.empty(); });
    throw DataError(*first +
                    (bad > 1 ? "; and " + std::to_string(bad - 1) + " more of the " + std::to_string(n) +
                                   " images under " + dir_ + " cannot be read"
                             : std::string()) +
                    " (fix or delete the file, or set data.on_bad_image: skip to leave unreadable images out)");
  }
  if (bad == n) {
    throw DataError(dir_ + ": none of the " + std::to_string(n) + " images can be read; first: " + errors[0]);
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      std::fprintf(stderr, "dptrain: warning: skipping unreadable image: %s\n", errors[i].c_str());
      skipped_.push_back(errors[i]);
      continue;
    }
    if (kept != i) {
      paths_[kept] = std::move(paths_[i]);
      labels_[kept] = labels_[i];
      if (cache) std::copy_n(cache_.begin() + i * sample_bytes_, sample_bytes_, cache_.begin() + kept * sample_bytes_);
    }
    ++kept;
  }
  paths_.resize(kept);
  labels_.resize(kept);
  if (cache) {
    cache_.resize(kept * sample_bytes_);
    cache_.shrink_to_fit();
  }
  std::fflush(stderr);
}

const uint8_t* ImageFolder::cached_pixels(size_t i) const {
  return cache_.empty() ? nullptr : cache_.data() + i * sample_bytes_;
}

void ImageFolder::pixels(size_t i, uint8_t* out) const {
  if (i >= paths_.size()) {
    throw DataError(dir_ + ": image index " + std::to_string(i) + " out of range (" + std::to_string(paths_.size()) +
                    " images)");
  }
  if (const uint8_t* p = cached_pixels(i)) {
    std::copy_n(p, sample_bytes_, out);
    return;
  }
  try {
    read_fitted_image(paths_[i], options_, out);
  } catch (const DataError& e) {
    throw DataError(std::string(e.what()) + " (it could be read when training started: was it changed since?)");
  }
}

FolderSplit split_image_folder(const ImageFolder& folder, double validation_fraction, uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    throw DataError("image folder " + folder.dir() + ": validation fraction must be in [0, 1), got " +
                    std::to_string(validation_fraction));
  }
  std::vector<std::vector<uint32_t>> by_class(folder.class_names().size());
  for (size_t i = 0; i < folder.size(); ++i) by_class[folder.label(i)].push_back(static_cast<uint32_t>(i));
  FolderSplit split;
  for (size_t k = 0; k < by_class.size(); ++k) {
    std::vector<uint32_t>& members = by_class[k];
    const size_t n = members.size();
    if (n == 0) continue;
    Rng rng(hash_key(seed, static_cast<uint64_t>(RngStream::Split), k));
    for (size_t i = n - 1; i > 0; --i) std::swap(members[i], members[rng.below(i + 1)]);  // Fisher-Yates
    const size_t held =
        std::min(n - 1, static_cast<size_t>(std::llround(validation_fraction * static_cast<double>(n))));
    split.validation.insert(split.validation.end(), members.begin(), members.begin() + held);
    split.train.insert(split.train.end(), members.begin() + held, members.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

ImageFolderDataset::ImageFolderDataset(std::shared_ptr<const ImageFolder> folder, std::vector<uint32_t> members,
                                       FolderPart part, size_t other_part, const std::vector<float>& mean,
                                       const std::vector<float>& std)
    : folder_(std::move(folder)),
      members_(std::move(members)),
      part_(part),
      other_part_(other_part),
      normalization_(folder_->options().shape[0], mean, std, "image folder " + folder_->dir()) {
  for (uint32_t m : members_) {
    if (m >= folder_->size()) throw DataError("image folder " + folder_->dir() + ": member index out of range");
  }
}

void ImageFolderDataset::get(size_t index, float* out, int32_t* label) const {
  if (index >= members_.size()) {
    throw DataError("image folder " + folder_->dir() + ": sample index " + std::to_string(index) +
                    " out of range (size " + std::to_string(members_.size()) + ")");
  }
  const size_t i = members_[index];
  const Shape& s = folder_->options().shape;
  const size_t plane = s[1] * s[2];
  const uint8_t* src = folder_->cached_pixels(i);
  std::vector<uint8_t> decoded;
  if (!src) {
    decoded.resize(s[0] * plane);
    folder_->pixels(i, decoded.data());
    src = decoded.data();
  }
  normalization_.apply(src, plane, out);
  *label = folder_->label(i);
}

std::string ImageFolderDataset::describe() const {
  const ImageFolder& f = *folder_;
  std::ostringstream out;
  out << "image_folder " << f.dir() << ": " << f.class_names().size() << " classes (" << list_names(f.class_names())
      << "), ";
  switch (part_) {
    case FolderPart::Train:
      out << members_.size() << " train / " << other_part_ << " validation of " << to_string(sample_shape())
          << ", training part";
      break;
    case FolderPart::Validation:
      out << other_part_ << " train / " << members_.size() << " validation of " << to_string(sample_shape())
          << ", validation part";
      break;
    case FolderPart::Whole:
      out << members_.size() << " images of " << to_string(sample_shape());
      break;
  }
  if (f.options().shorter_side > 0) {
    out << "; shorter side resized to " << f.options().shorter_side << ", centre " << sample_shape()[1] << "x"
        << sample_shape()[2] << " cut out";
  } else {
    out << "; " << (f.options().resize == ResizeMode::Crop ? "shorter side resized, centre-cropped" : "stretched")
        << " to size";
  }
  if (f.cached()) {
    out << "; decoded images cached in memory (" << megabytes(f.cache_bytes()) << ")";
  } else {
    out << "; decoded on every read (larger than data.cache_mb)";
  }
  if (!f.skipped().empty()) out << "; " << f.skipped().size() << " unreadable images skipped";
  return out.str();
}

}  // namespace dptrain
