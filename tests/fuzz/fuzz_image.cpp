// Fuzz target: decode_image, the PNG and JPEG decoders (the format is told by the first bytes).
#include <cstddef>
#include <cstdint>

#include "runtime/core/errors.h"
#include "runtime/data/image_io.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dptrain::Image image = dptrain::decode_image(data, size, "fuzz-image");
    if (image.pixels.size() != image.width * image.height * image.channels) __builtin_trap();  // the decoder's promise
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  return 0;
}
