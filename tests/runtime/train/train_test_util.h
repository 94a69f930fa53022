// Helpers of the runtime/train tests.
#pragma once

#include <cstdio>
#include <string>

namespace dptrain::train_test {

// A temporary file to print into (say, a RunReport's console), and what was printed.
class CapturedFile {
 public:
  CapturedFile() : file_(std::tmpfile()) {}
  ~CapturedFile() { std::fclose(file_); }
  CapturedFile(const CapturedFile&) = delete;
  CapturedFile& operator=(const CapturedFile&) = delete;

  std::FILE* file() const { return file_; }
  std::string text() const {
    std::rewind(file_);
    std::string out;
    for (int c; (c = std::fgetc(file_)) != EOF;) out += static_cast<char>(c);
    return out;
  }

 private:
  std::FILE* file_;
};

}  // namespace dptrain::train_test
