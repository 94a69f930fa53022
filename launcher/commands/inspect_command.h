// `dptrain inspect FILE`: what a checkpoint holds, and whether every checksum in it is right.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace dptrain::launcher {

// Options of `dptrain inspect`.
struct InspectArgs {
  std::string file;  // the checkpoint, e.g. run/checkpoints/ckpt-e000003-s00000123.h5
};

// Registers `inspect` on `app`, parsing into `args`; returns the subcommand.
CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args);

// Prints the checkpoint's position, run, optimizer, layout and config, then verifies every dataset.
// Returns 0 when the file is a valid checkpoint, 1 (after printing the error) otherwise.
int run_inspect(const InspectArgs& args);

}  // namespace dptrain::launcher
