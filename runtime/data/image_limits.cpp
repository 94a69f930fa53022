#include "runtime/data/image_limits.h"

namespace dptrain {

std::string image_size_refusal(ImageCodec codec, uint64_t width, uint64_t height, size_t file_bytes) {
  const uint64_t pixels_per_byte = codec == ImageCodec::Png ? 8 * 1040 : 8 * 64;
  const std::string declares = std::string("the ") + (codec == ImageCodec::Png ? "PNG" : "JPEG") + " header declares " +
                               std::to_string(width) + " x " + std::to_string(height) + " pixels";
  if (width > kMaxImageSide || height > kMaxImageSide || width * height > kMaxImagePixels) {
    return declares + ", more than dptrain decodes (at most " + std::to_string(kMaxImageSide) + " a side and " +
           std::to_string(kMaxImagePixels) + " in all); resize the image or remove it";
  }
  if (width * height > pixels_per_byte * file_bytes + (uint64_t{1} << 16)) {
    return declares + ", more than its " + std::to_string(file_bytes) + " bytes can hold; the file is damaged";
  }
  return "";
}

}  // namespace dptrain
