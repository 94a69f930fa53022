// Fuzz target: RunConfig::parse, the config reader, with --set overrides. The input is YAML text;
// every line after a line "#--set" is one override ("train.batch_size=64"), as the command line gives them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string yaml(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  const std::string marker = "#--set\n";
  const size_t at = yaml.rfind(marker, std::string::npos);
  if (at != std::string::npos && (at == 0 || yaml[at - 1] == '\n')) {
    std::string rest = yaml.substr(at + marker.size());
    yaml.resize(at);
    size_t start = 0;
    while (start < rest.size()) {
      size_t end = rest.find('\n', start);
      if (end == std::string::npos) end = rest.size();
      overrides.push_back(rest.substr(start, end - start));
      start = end + 1;
    }
  }
  try {
    dptrain::RunConfig config = dptrain::RunConfig::parse(yaml, "fuzz.yaml", overrides);
    (void)config;
  } catch (const dptrain::Error& error) {
    // A refused config is the expected outcome; a crash, a leak or another exception type is not.
    dptrain::fuzz::refused(error);
  }
  return 0;
}
