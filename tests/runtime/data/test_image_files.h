// Helpers for image tests: learnable synthetic images, image folders written from them, and PNG
// files of the less common kinds (palette, 16-bit, alpha) assembled chunk by chunk.
#pragma once

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/core/rng.h"
#include "runtime/data/image_io.h"

namespace dptrain::testing {

// A synthetic image of class k out of 4 or more: red or blue (k % 2), horizontal or vertical stripes
// ((k / 2) % 2), with a random phase, brightness and per-pixel noise drawn from `key`.
inline Image pattern_image(size_t k, size_t width, size_t height, size_t channels, uint64_t key, float noise = 40.0f) {
  Rng rng(key);
  const float phase = 6.2831853f * rng.uniform(), brightness = 0.6f + 0.4f * rng.uniform();
  const bool vertical = (k / 2) % 2 == 1;
  const float colour[2][3] = {{1.0f, 0.35f, 0.2f}, {0.2f, 0.4f, 1.0f}};
  const size_t cycles = 2 + (k / 4) % 3;
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.resize(width * height * channels);
  for (size_t y = 0; y < height; ++y) {
    for (size_t x = 0; x < width; ++x) {
      const float t = (vertical ? static_cast<float>(x) / width : static_cast<float>(y) / height) * 6.2831853f * cycles;
      const float level = brightness * (0.55f + 0.45f * std::sin(t + phase));
      for (size_t c = 0; c < channels; ++c) {
        const float base = channels == 1 ? (k % 2 == 0 ? 0.8f : 0.4f) : colour[k % 2][c];
        const float v = 255.0f * base * level + noise * (rng.uniform() - 0.5f) * 3.46f;
        image.pixels[(y * width + x) * channels + c] =
            static_cast<uint8_t>(std::lround(std::fmin(255.f, std::fmax(0.f, v))));
      }
    }
  }
  return image;
}

// What write_image_folder writes besides square RGB PNGs.
struct FolderRecipe {
  size_t classes = 4;
  size_t per_class = 10;
  size_t size = 32;
  size_t jpeg_every = 0;    // every n-th image is a JPEG (0: none)
  size_t grey_every = 0;    // every n-th image is grey (0: none)
  size_t resize_every = 0;  // every n-th image is larger and not square (0: none)
  uint64_t seed = 1;
};

// Writes DIR/class_K/img_I.{png,jpg} and returns the paths written, in class, then name order.
inline std::vector<std::string> write_image_folder(const std::filesystem::path& dir, const FolderRecipe& r) {
  std::vector<std::string> paths;
  for (size_t k = 0; k < r.classes; ++k) {
    const std::filesystem::path class_dir = dir / ("class_" + std::to_string(k));
    std::filesystem::create_directories(class_dir);
    for (size_t i = 0; i < r.per_class; ++i) {
      const size_t n = k * r.per_class + i + 1;
      const bool jpeg = r.jpeg_every && n % r.jpeg_every == 0;
      const bool grey = r.grey_every && n % r.grey_every == 0;
      const bool resized = r.resize_every && n % r.resize_every == 0;
      const size_t w = resized ? r.size + r.size / 2 : r.size, h = resized ? r.size + 3 : r.size;
      const Image image = pattern_image(k, w, h, grey ? 1 : 3, hash_key(r.seed, k, i));
      char name[32];
      std::snprintf(name, sizeof name, "img_%04zu.%s", i, jpeg ? "jpg" : "png");
      const std::string path = (class_dir / name).string();
      write_file_bytes(path, jpeg ? encode_jpeg(image, 92) : encode_png(image));
      paths.push_back(path);
    }
  }
  return paths;
}

// PNG assembled by hand: signature, IHDR, optional PLTE, one IDAT of unfiltered rows, IEND.
inline std::vector<uint8_t> raw_png(uint32_t width, uint32_t height, uint8_t depth, uint8_t colour_type,
                                    const std::vector<uint8_t>& rows_without_filter_bytes, size_t row_bytes,
                                    const std::vector<uint8_t>& palette = {}) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  auto put32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
  };
  auto chunk = [&](const char* kind, const std::vector<uint8_t>& data) {
    put32(out, static_cast<uint32_t>(data.size()));
    std::vector<uint8_t> body(kind, kind + 4);
    body.insert(body.end(), data.begin(), data.end());
    out.insert(out.end(), body.begin(), body.end());
    put32(out, static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
  };
  std::vector<uint8_t> ihdr;
  put32(ihdr, width);
  put32(ihdr, height);
  ihdr.insert(ihdr.end(), {depth, colour_type, 0, 0, 0});
  chunk("IHDR", ihdr);
  if (!palette.empty()) chunk("PLTE", palette);
  std::vector<uint8_t> raw;
  for (uint32_t y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), rows_without_filter_bytes.begin() + y * row_bytes,
               rows_without_filter_bytes.begin() + (y + 1) * row_bytes);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> packed(size);
  EXPECT_EQ(compress(packed.data(), &size, raw.data(), static_cast<uLong>(raw.size())), Z_OK);
  packed.resize(size);
  chunk("IDAT", packed);
  chunk("IEND", {});
  return out;
}

}  // namespace dptrain::testing
