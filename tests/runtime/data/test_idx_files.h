// Helpers for data tests: a scratch folder and small IDX files written into it, plain or gzipped.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace dptrain::testing {

// Whether a test file is written gzipped or plain.
enum class Gzip { No, Yes };

// A fresh folder under the system temp dir, removed when the test ends.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("dptrain_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The bytes of an IDX file: magic 00 00 `type` ndims, big-endian dims, then `payload`.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& payload,
                                      uint8_t type = 0x08) {
  std::vector<uint8_t> out{0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
  }
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes, Gzip gzip) {
  if (gzip == Gzip::Yes) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    if (!bytes.empty()) {
      ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
    }
    ASSERT_EQ(gzclose(f), Z_OK);
  } else {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good()) << path;
  }
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Pixel j of image i in the test images: every value 0..255 occurs.
inline uint8_t test_pixel(size_t i, size_t j) { return static_cast<uint8_t>((i * 37 + j * 11) % 256); }

// Writes `n` images of h x w (test_pixel) and labels i % classes as NAME-images / NAME-labels.
inline void write_pair(const ScratchDir& dir, const std::string& name, uint32_t n, uint32_t h, uint32_t w,
                       uint8_t classes, Gzip gzip) {
  std::vector<uint8_t> pixels(size_t{n} * h * w), labels(n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < size_t{h} * w; ++j) pixels[i * h * w + j] = test_pixel(i, j);
    labels[i] = static_cast<uint8_t>(i % classes);
  }
  write_file(dir.file(name + "-images"), idx_bytes({n, h, w}, pixels), gzip);
  write_file(dir.file(name + "-labels"), idx_bytes({n}, labels), gzip);
}

}  // namespace dptrain::testing
