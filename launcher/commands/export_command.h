// `dptrain export`: a checkpoint's model as a standard ONNX file, for inference runtimes other than dptrain.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dptrain::launcher {

class Workers;

// Options of `dptrain export`.
struct ExportArgs {
  std::string config;                  // empty: the config stored in the checkpoint
  std::vector<std::string> overrides;  // --set key=value
  std::string checkpoint;              // --checkpoint FILE.h5
  std::string onnx;                    // --onnx FILE.onnx
  int64_t opset = 13;                  // --opset: the ai.onnx operator set written
};

// Registers `export` on `app`, parsing into `args`; returns the subcommand.
CLI::App* add_export_command(CLI::App& app, ExportArgs& args);

// Loads the checkpoint's model and writes it (rank 0) as an ONNX file; prints what it wrote.
int run_export(const ExportArgs& args, Workers& workers);

}  // namespace dptrain::launcher
