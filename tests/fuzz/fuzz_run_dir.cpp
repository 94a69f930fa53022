// Fuzz target: the run folder's request files (runtime/elastic/run_dir.h). The input's first line is a
// file name, the rest the file's content; the file is put into RUN_DIR/elastic/requests/ and the
// job's readers take it: leave requests (the name), join requests (name and content), and the same
// content as the members file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/elastic/run_dir.h"
#include "tests/fuzz/fuzz_file.h"

namespace fs = std::filesystem;

namespace {

// A run folder of this process, created once and removed at exit.
struct RunDir {
  RunDir() : root(fs::temp_directory_path() / ("dptrain-fuzz-run-dir-" + std::to_string(getpid()))), dir(root.string()) {
    fs::remove_all(root);
    dir.create();
  }
  ~RunDir() {
    std::error_code error;
    fs::remove_all(root, error);
  }
  fs::path root;
  dptrain::launcher::ElasticDir dir;
};

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static RunDir run;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  std::string name = input.substr(0, newline);
  const std::string text = newline == std::string::npos ? "" : input.substr(newline + 1);
  for (char& c : name) {
    if (c == '/' || c == '\0') c = '_';  // a name the file system can hold
  }
  if (name.empty() || name == "." || name == ".." || name.size() > 200) name = "leave-x";

  const fs::path requests = run.dir.path("requests");
  write(requests / name, text);
  write(run.dir.path("members"), text);
  try {
    std::vector<std::string> rejected;
    (void)run.dir.take_leave_requests(&rejected);
    (void)dptrain::launcher::read_join_requests(run.dir, std::chrono::seconds(3600));
    (void)dptrain::launcher::parse_join_request(name, text);
    (void)run.dir.read_members();
  } catch (const dptrain::Error& error) {
    dptrain::fuzz::refused(error);
  }
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(requests, error)) fs::remove_all(entry.path(), error);
  return 0;
}
