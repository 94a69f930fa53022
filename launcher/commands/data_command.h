// `dptrain data`: preparing data sets; `dptrain data convert` writes a run's data as one HDF5 file.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dptrain::launcher {

// Options of `dptrain data convert`.
struct DataConvertArgs {
  std::string config;                  // a run config whose data section is converted
  std::vector<std::string> overrides;  // --set key=value, applied to the config
  std::vector<std::string> from_idx;   // --from-idx TRAIN_IMAGES TRAIN_LABELS TEST_IMAGES TEST_LABELS
  std::string out;                     // --out FILE.h5
  bool force = false;                  // --force: replace an existing output file
  size_t chunk = 0;                    // --chunk: samples per HDF5 chunk; 0 = about 128 KiB
};

// Registers `data` and its subcommand `convert` on `app`, parsing into `args`; returns `convert`.
CLI::App* add_data_commands(CLI::App& app, DataConvertArgs& args);

int run_data_convert(const DataConvertArgs& args);

}  // namespace dptrain::launcher
