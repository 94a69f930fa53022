// The image sizes dptrain decodes: what a PNG or JPEG header, or data.shape, may declare.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dptrain {

// Largest accepted side and pixel count: a corrupt header must not make us allocate gigabytes.
constexpr uint32_t kMaxImageSide = 1u << 15;
constexpr uint64_t kMaxImagePixels = uint64_t{1} << 28;

// An image file format whose header sizes are checked.
enum class ImageCodec { Png, Jpeg };

// Why a header's `width` x `height` is refused before anything is allocated for it, or empty when it is
// accepted: beyond kMaxImageSide or kMaxImagePixels, or more than `file_bytes` of that codec can hold
// (deflate expands at most 1032 times and a PNG pixel may take one bit; a JPEG needs at least one bit
// per 8x8 block).
std::string image_size_refusal(ImageCodec codec, uint64_t width, uint64_t height, size_t file_bytes);

}  // namespace dptrain
