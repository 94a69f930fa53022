// The options of `dptrain export`, registered in every build (export.cpp or export_unavailable.cpp runs it).
#include <CLI/CLI.hpp>

#include "launcher/commands/export_command.h"

namespace dptrain::launcher {

CLI::App* add_export_command(CLI::App& app, ExportArgs& args) {
  auto* cmd = app.add_subcommand("export", "Write a checkpoint's model as an ONNX file (evaluation form)");
  cmd->add_option("config", args.config, "YAML run config (default: the config stored in the checkpoint)");
  cmd->add_option("--checkpoint", args.checkpoint, "Checkpoint file (.h5)")->required();
  cmd->add_option("--onnx", args.onnx, "The ONNX file to write (replaced whole, or left as it was on failure)")
      ->required();
  cmd->add_option("--opset", args.opset, "ai.onnx operator set version (13 to 17)")->check(CLI::Range(13, 17));
  cmd->add_option("--set", args.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  return cmd;
}

}  // namespace dptrain::launcher
