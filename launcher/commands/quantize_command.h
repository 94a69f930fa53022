// `dptrain quantize`: a checkpoint's model with its conv2d and dense weights in int8 (per output
// channel) and its layers' input ranges calibrated on training batches, for int8 inference on the CPU
// (dptrain eval and predict run the file it writes).
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dptrain::launcher {

class Workers;

// Options of `dptrain quantize`.
struct QuantizeArgs {
  std::string checkpoint;              // CHECKPOINT (positional)
  std::string config;                  // --config: a run config instead of the one the checkpoint stores
  std::vector<std::string> overrides;  // --set key=value
  size_t calibration_batches = 10;     // --calibration-batches: evaluation batches of training samples
  std::string out;                     // --out FILE.h5
};

// Registers `quantize` on `app`, parsing into `args`; returns the subcommand.
CLI::App* add_quantize_command(CLI::App& app, QuantizeArgs& args);

// Calibrates, writes the quantized checkpoint and prints what it holds; one process only.
int run_quantize(const QuantizeArgs& args, Workers& workers);

}  // namespace dptrain::launcher
