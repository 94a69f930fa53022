// libpng and libjpeg report errors by longjmp. Every function below that calls setjmp is a plain C-style
// function: it holds no C++ object with a destructor, keeps what it changes after setjmp in volatile
// locals or in caller-owned structs, and returns a status. The C++ wrappers turn that status into
// DataError and own the memory.
#include "runtime/data/image_io.h"

// clang-format off
#include <cstdio>
#include <jpeglib.h>
#include <jerror.h>
// clang-format on
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>

#include "runtime/core/errors.h"
#include "runtime/core/memory_budget.h"
#include "runtime/data/image_limits.h"

namespace dptrain {

namespace {

// A decoded image in malloc'd memory, as the C-style decoders return it.
struct RawImage {
  uint8_t* pixels = nullptr;  // (height, width, channels)
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t channels = 0;
};

// Where an error callback leaves the library's message.
struct CodecMessage {
  char text[JMSG_LENGTH_MAX > 256 ? JMSG_LENGTH_MAX : 256] = {0};
  bool refused = false;  // the header's size was refused before decoding: `text` is the whole reason
};

void set_message(CodecMessage* message, const char* text) {
  std::snprintf(message->text, sizeof message->text, "%s", text);
}

uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// Whether the header's size is refused; if so, `message` says why. No object outlives the call, so the
// caller may longjmp right after.
bool refuse_size(CodecMessage* message, ImageCodec codec, uint64_t width, uint64_t height, size_t file_bytes) {
  const std::string reason = image_size_refusal(codec, width, height, file_bytes);
  if (reason.empty()) return false;
  set_message(message, reason.c_str());
  message->refused = true;
  return true;
}

// ---- PNG -----------------------------------------------------------------------------------------

// The bytes libpng reads from, and how far it got.
struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t offset;
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->offset) png_error(png, "unexpected end of file (the file is truncated)");
  std::memcpy(out, src->data + src->offset, n);
  src->offset += n;
}

void png_on_error(png_structp png, png_const_charp text) {
  set_message(static_cast<CodecMessage*>(png_get_error_ptr(png)), text);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

// Decodes PNG bytes into `out`; on failure returns false with libpng's message in `message`.
bool png_decode_raw(const uint8_t* data, size_t size, RawImage* out, CodecMessage* message) {
  PngSource source{data, size, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, png_on_error, png_on_warning);
  if (!png) {
    set_message(message, "cannot create a libpng reader (out of memory)");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    set_message(message, "cannot create a libpng reader (out of memory)");
    return false;
  }
  uint8_t* volatile pixels = nullptr;
  png_bytep* volatile rows = nullptr;
  if (setjmp(png_jmpbuf(png))) {
    std::free(pixels);
    std::free(rows);
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, &source, png_read_bytes);
  png_set_user_limits(png, kMaxImageSide, kMaxImageSide);
  png_read_info(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  if (depth == 16) png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  const uint32_t width = png_get_image_width(png, info);
  const uint32_t height = png_get_image_height(png, info);
  const uint32_t channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (channels != 1 && channels != 3) png_error(png, "unexpected channel count after conversion");
  if (uint64_t{width} * height > kMaxImagePixels) png_error(png, "image too large");
  if (row_bytes != size_t{width} * channels) png_error(png, "unexpected row size after conversion");
  pixels = static_cast<uint8_t*>(std::malloc(row_bytes * height + 1));
  rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * (height + 1)));
  if (!pixels || !rows) png_error(png, "out of memory");
  for (uint32_t y = 0; y < height; ++y) rows[y] = pixels + row_bytes * y;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  std::free(rows);
  out->pixels = pixels;
  out->width = width;
  out->height = height;
  out->channels = channels;
  return true;
}

// A growing malloc'd buffer that libpng writes into.
struct PngSink {
  uint8_t* data = nullptr;
  size_t size = 0;
  size_t capacity = 0;
};

void png_write_bytes(png_structp png, png_bytep in, png_size_t n) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  if (sink->size + n > sink->capacity) {
    const size_t capacity = 2 * (sink->size + n) + 1024;
    auto* grown = static_cast<uint8_t*>(std::realloc(sink->data, capacity));
    if (!grown) png_error(png, "out of memory");
    sink->data = grown;
    sink->capacity = capacity;
  }
  std::memcpy(sink->data + sink->size, in, n);
  sink->size += n;
}

void png_flush_nothing(png_structp) {}

// Encodes interleaved 8-bit pixels as PNG into `sink`; on failure returns false with libpng's message.
bool png_encode_raw(const uint8_t* pixels, uint32_t width, uint32_t height, uint32_t channels, PngSink* sink,
                    CodecMessage* message) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, png_on_error, png_on_warning);
  if (!png) {
    set_message(message, "cannot create a libpng writer (out of memory)");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    set_message(message, "cannot create a libpng writer (out of memory)");
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, sink, png_write_bytes, png_flush_nothing);
  png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (uint32_t y = 0; y < height; ++y) {
    png_write_row(png, const_cast<png_bytep>(pixels + size_t{y} * width * channels));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

// ---- JPEG ----------------------------------------------------------------------------------------

// libjpeg's error manager, extended with the place to jump to and what went wrong.
struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  CodecMessage message;
  bool incomplete = false;  // a warning that data is missing: the decoder filled the rest with grey
  CodecMessage warning;
};

void jpeg_on_error(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message.text);
  std::longjmp(errors->jump, 1);
}

void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  const int code = cinfo->err->msg_code;
  if ((code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) && !reinterpret_cast<JpegErrors*>(cinfo->err)->incomplete) {
    auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
    errors->incomplete = true;
    (*cinfo->err->format_message)(cinfo, errors->warning.text);
  }
}

// Everything the JPEG decoder changes, owned by the caller so that nothing local to the setjmp frame changes.
struct JpegDecodeState {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
};

bool jpeg_decode_raw(const uint8_t* data, size_t size, RawImage* out, JpegDecodeState* state) {
  std::memset(&state->cinfo, 0, sizeof state->cinfo);
  state->cinfo.err = jpeg_std_error(&state->errors.pub);
  state->errors.pub.error_exit = jpeg_on_error;
  state->errors.pub.emit_message = jpeg_on_message;
  uint8_t* volatile pixels = nullptr;
  if (setjmp(state->errors.jump)) {
    jpeg_destroy_decompress(&state->cinfo);
    std::free(pixels);
    return false;
  }
  jpeg_create_decompress(&state->cinfo);
  jpeg_mem_src(&state->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&state->cinfo, TRUE);
  state->cinfo.out_color_space = state->cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  if (refuse_size(&state->errors.message, ImageCodec::Jpeg, state->cinfo.image_width, state->cinfo.image_height,
                  size)) {
    std::longjmp(state->errors.jump, 1);
  }
  jpeg_start_decompress(&state->cinfo);
  const uint32_t width = state->cinfo.output_width, height = state->cinfo.output_height;
  const uint32_t channels = static_cast<uint32_t>(state->cinfo.output_components);
  pixels = static_cast<uint8_t*>(std::malloc(size_t{width} * height * channels + 1));
  if (!pixels) ERREXIT1(&state->cinfo, JERR_OUT_OF_MEMORY, 0);
  while (state->cinfo.output_scanline < height) {
    JSAMPROW row = pixels + size_t{state->cinfo.output_scanline} * width * channels;
    jpeg_read_scanlines(&state->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&state->cinfo);
  jpeg_destroy_decompress(&state->cinfo);
  out->pixels = pixels;
  out->width = width;
  out->height = height;
  out->channels = channels;
  return true;
}

// Everything the JPEG encoder changes, owned by the caller.
struct JpegEncodeState {
  jpeg_compress_struct cinfo;
  JpegErrors errors;
  unsigned char* buffer = nullptr;  // malloc'd by libjpeg; the caller frees it
  unsigned long size = 0;
};

bool jpeg_encode_raw(const uint8_t* pixels, uint32_t width, uint32_t height, uint32_t channels, int quality,
                     JpegEncodeState* state) {
  std::memset(&state->cinfo, 0, sizeof state->cinfo);
  state->cinfo.err = jpeg_std_error(&state->errors.pub);
  state->errors.pub.error_exit = jpeg_on_error;
  if (setjmp(state->errors.jump)) {
    jpeg_destroy_compress(&state->cinfo);
    return false;
  }
  jpeg_create_compress(&state->cinfo);
  jpeg_mem_dest(&state->cinfo, &state->buffer, &state->size);
  state->cinfo.image_width = width;
  state->cinfo.image_height = height;
  state->cinfo.input_components = static_cast<int>(channels);
  state->cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&state->cinfo);
  jpeg_set_quality(&state->cinfo, quality, TRUE);
  jpeg_start_compress(&state->cinfo, TRUE);
  while (state->cinfo.next_scanline < height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels + size_t{state->cinfo.next_scanline} * width * channels);
    jpeg_write_scanlines(&state->cinfo, &row, 1);
  }
  jpeg_finish_compress(&state->cinfo);
  jpeg_destroy_compress(&state->cinfo);
  return true;
}

// ---- C++ side ------------------------------------------------------------------------------------

Image take(RawImage raw) {
  Image image;
  image.width = raw.width;
  image.height = raw.height;
  image.channels = raw.channels;
  image.pixels.assign(raw.pixels, raw.pixels + size_t{raw.width} * raw.height * raw.channels);
  std::free(raw.pixels);
  return image;
}

void check_encodable(const Image& image) {
  if ((image.channels != 1 && image.channels != 3) || image.width == 0 || image.height == 0 ||
      image.width > kMaxImageSide || image.height > kMaxImageSide ||
      image.pixels.size() != image.width * image.height * image.channels) {
    throw DataError("cannot encode an image of " + std::to_string(image.width) + " x " + std::to_string(image.height) +
                    " x " + std::to_string(image.channels) + " with " + std::to_string(image.pixels.size()) +
                    " bytes (needs 1 or 3 channels and matching bytes)");
  }
}

}  // namespace

ImageFormat detect_image_format(const uint8_t* data, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::Png;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return ImageFormat::Jpeg;
  return ImageFormat::Unknown;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  RawImage raw;
  switch (detect_image_format(data, size)) {
    case ImageFormat::Png: {
      CodecMessage message;
      // IHDR, the first chunk, holds the size: checked before libpng reads on (it would read up to the data).
      if (size >= 24 && std::memcmp(data + 12, "IHDR", 4) == 0 &&
          refuse_size(&message, ImageCodec::Png, be32(data + 16), be32(data + 20), size)) {
        throw DataError(name + ": " + message.text);
      }
      if (!png_decode_raw(data, size, &raw, &message)) {
        throw DataError(name + ": cannot decode PNG (libpng: " + message.text + ")");
      }
      return take(raw);
    }
    case ImageFormat::Jpeg: {
      auto state = std::make_unique<JpegDecodeState>();
      if (!jpeg_decode_raw(data, size, &raw, state.get())) {
        if (state->errors.message.refused) throw DataError(name + ": " + state->errors.message.text);
        throw DataError(name + ": cannot decode JPEG (libjpeg: " + state->errors.message.text + ")");
      }
      if (state->errors.incomplete) {
        std::free(raw.pixels);
        throw DataError(name + ": cannot decode JPEG (libjpeg: " + state->errors.warning.text +
                        "; the file is truncated or damaged)");
      }
      return take(raw);
    }
    case ImageFormat::Unknown:
      break;
  }
  std::string start;
  for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) {
    char hex[4];
    std::snprintf(hex, sizeof hex, "%02x", data[i]);
    start += (i ? " " : "") + std::string(hex);
  }
  throw DataError(name + ": not a PNG or JPEG file (" +
                  (size == 0 ? std::string("the file is empty") : "it starts with bytes " + start) + ")");
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> encode_png(const Image& image) {
  check_encodable(image);
  PngSink sink;
  CodecMessage message;
  const bool ok =
      png_encode_raw(image.pixels.data(), static_cast<uint32_t>(image.width), static_cast<uint32_t>(image.height),
                     static_cast<uint32_t>(image.channels), &sink, &message);
  std::vector<uint8_t> bytes(sink.data, sink.data + (ok ? sink.size : 0));
  std::free(sink.data);
  if (!ok) throw DataError(std::string("cannot encode PNG (libpng: ") + message.text + ")");
  return bytes;
}

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  check_encodable(image);
  if (quality < 1 || quality > 100) throw DataError("JPEG quality must be in [1, 100], got " + std::to_string(quality));
  auto state = std::make_unique<JpegEncodeState>();
  const bool ok =
      jpeg_encode_raw(image.pixels.data(), static_cast<uint32_t>(image.width), static_cast<uint32_t>(image.height),
                      static_cast<uint32_t>(image.channels), quality, state.get());
  std::vector<uint8_t> bytes(state->buffer, state->buffer + (ok ? state->size : 0));
  std::free(state->buffer);
  if (!ok) throw DataError(std::string("cannot encode JPEG (libjpeg: ") + state->errors.message.text + ")");
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw DataError(path + ": cannot write the file (check the folder exists and is writable)");
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  size_t file_bytes = 0;
  std::string why;
  if (!regular_file_size(path, &file_bytes, &why) && !why.empty()) throw DataError(path + ": " + why);
  reserve(file_bytes, "the contents of " + path, "");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw DataError(path + ": cannot open the file (missing, or not readable)");
  const std::streamoff size = in.tellg();
  if (size < 0) throw DataError(path + ": cannot read the file");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw DataError(path + ": cannot read the file (I/O error)");
  }
  return bytes;
}

}  // namespace dptrain
