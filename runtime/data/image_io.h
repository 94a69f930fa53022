// PNG and JPEG files read and written with libpng and libjpeg; every failure is a DataError naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dptrain {

// An 8-bit image with interleaved channels, as decoded from or encoded to a file.
struct Image {
  size_t width = 0;
  size_t height = 0;
  size_t channels = 0;          // 1 (grey) or 3 (RGB)
  std::vector<uint8_t> pixels;  // (H, W, channels)
};

// An image file format, recognised from the file's first bytes rather than its name.
enum class ImageFormat { Unknown, Png, Jpeg };

ImageFormat detect_image_format(const uint8_t* data, size_t size);

// Decodes PNG or JPEG bytes. Grey and grey+alpha images give 1 channel, all others 3: alpha is
// dropped (not composited), 16-bit samples are reduced to 8 bits and palettes expanded. A corrupt
// or truncated file throws DataError "NAME: ..." with libpng's or libjpeg's own message.
Image decode_image(const uint8_t* data, size_t size, const std::string& name);

// Reads and decodes one file; a missing or unreadable file is a DataError naming it too.
Image read_image(const std::string& path);

// Encodes `image` (1 or 3 channels) as PNG, or as baseline JPEG of `quality` in [1, 100].
std::vector<uint8_t> encode_png(const Image& image);
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 95);

// Writes bytes to `path`; throws DataError naming it when that fails.
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

// Reads a whole file; throws DataError naming it when that fails.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace dptrain
