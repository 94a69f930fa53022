// make_augmentation: the `data.augment` mapping read and checked, every range error naming its key.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <utility>

#include "runtime/data/augment.h"

namespace dptrain {

namespace {

bool finite(double v) { return std::isfinite(v); }

// A `[min, max]` pair under `key`, or `fallback` when absent.
std::pair<double, double> read_range(ConfigMap& map, const std::string& key, std::pair<double, double> fallback) {
  const std::vector<double> v = map.get_double_list(key, std::vector<double>{fallback.first, fallback.second});
  if (v.size() != 2) {
    map.fail(key, "needs two numbers [min, max], got " + std::to_string(v.size()));
  }
  if (!finite(v[0]) || !finite(v[1]) || v[0] > v[1]) {
    map.fail(key, "needs finite numbers [min, max] with min <= max, got [" + format_number(v[0]) + ", " +
                      format_number(v[1]) + "]");
  }
  return {v[0], v[1]};
}

ResizedCropRange read_resized_crop(ConfigMap& map) {
  ResizedCropRange r;
  std::tie(r.scale_min, r.scale_max) = read_range(map, "scale", {r.scale_min, r.scale_max});
  std::tie(r.ratio_min, r.ratio_max) = read_range(map, "ratio", {r.ratio_min, r.ratio_max});
  map.finish();
  if (!(r.scale_min > 0.0 && r.scale_max <= 1.0)) {
    map.fail("scale", "is the crop's area as a fraction of the image and must lie in (0, 1], got [" +
                          format_number(r.scale_min) + ", " + format_number(r.scale_max) +
                          "] (torchvision's default is "
                          "[0.08, 1.0])");
  }
  if (!(r.ratio_min > 0.0)) {
    map.fail("ratio", "is the crop's width / height and must be > 0, got [" + format_number(r.ratio_min) + ", " +
                          format_number(r.ratio_max) + "] (torchvision's default is [0.75, 1.3333])");
  }
  return r;
}

// torchvision's reading of a jitter amount: b gives [max(0, 1 - b), 1 + b]; [min, max] is taken as it is.
void read_jitter_factor(ConfigMap& map, const std::string& key, ColorOp op, ColorJitterRange& range) {
  const std::vector<double> v = map.get_double_list(key, std::vector<double>{0.0});  // 0: off
  const size_t k = static_cast<size_t>(op);
  if (v.size() == 1) {
    if (!finite(v[0]) || v[0] < 0.0) {
      map.fail(key,
               "must be a number >= 0 (the factor is drawn from [max(0, 1 - b), 1 + b]), got " + format_number(v[0]));
    }
    range.min[k] = std::max(0.0, 1.0 - v[0]);
    range.max[k] = 1.0 + v[0];
  } else if (v.size() == 2) {
    if (!finite(v[0]) || !finite(v[1]) || v[0] < 0.0 || v[0] > v[1]) {
      map.fail(key,
               "as [min, max] needs 0 <= min <= max, got [" + format_number(v[0]) + ", " + format_number(v[1]) + "]");
    }
    range.min[k] = v[0];
    range.max[k] = v[1];
  } else {
    map.fail(key, "needs one number b (factor in [max(0, 1 - b), 1 + b]) or two [min, max], got " +
                      std::to_string(v.size()));
  }
}

std::optional<ColorJitterRange> read_color_jitter(ConfigMap& map, size_t channels) {
  ColorJitterRange range;
  read_jitter_factor(map, "brightness", ColorOp::Brightness, range);
  read_jitter_factor(map, "contrast", ColorOp::Contrast, range);
  read_jitter_factor(map, "saturation", ColorOp::Saturation, range);
  map.finish();
  if (range.on(ColorOp::Saturation) && channels != 3) {
    map.fail("saturation", "needs RGB samples, but they have " + std::to_string(channels) +
                               " channel(s); remove the key, or set data.shape to [3, H, W]");
  }
  const bool any = range.on(ColorOp::Brightness) || range.on(ColorOp::Contrast) || range.on(ColorOp::Saturation);
  return any ? std::optional<ColorJitterRange>(range) : std::nullopt;
}

}  // namespace

std::shared_ptr<const Augmentation> make_augmentation(ConfigMap& augment, size_t channels,
                                                      const std::vector<float>& mean, const std::vector<float>& std) {
  AugmentOptions options;
  // Both nested maps are read even when absent, so that an unknown key's message lists them.
  const bool resized_crop = augment.has("random_resized_crop"), color_jitter = augment.has("color_jitter");
  ConfigMap crop = augment.get_map("random_resized_crop");
  ConfigMap jitter = augment.get_map("color_jitter");
  if (resized_crop) options.resized_crop = read_resized_crop(crop);
  options.crop_padding = augment.get_size("crop_padding", size_t{0});
  options.flip = augment.get_bool("horizontal_flip", false) ? HorizontalFlip::Yes : HorizontalFlip::No;
  if (color_jitter) options.color_jitter = read_color_jitter(jitter, channels);
  augment.finish();
  if (options.crop_padding > 64) {
    augment.fail("crop_padding", "must be at most 64 pixels, got " + std::to_string(options.crop_padding));
  }
  if (!options.resized_crop && options.crop_padding == 0 && options.flip == HorizontalFlip::No &&
      !options.color_jitter) {
    return nullptr;
  }
  options.mean = mean;
  options.std = std;
  return std::make_shared<const Augmentation>(std::move(options));
}

}  // namespace dptrain
