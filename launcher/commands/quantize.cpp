#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "launcher/commands/checkpoint_run.h"
#include "launcher/commands/quantize_command.h"
#include "launcher/workers.h"
#include "layers/cpu/int8_conv.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"
#include "runtime/core/run_config.h"
#include "runtime/train/quantizer.h"
#include "runtime/train/training_run.h"

namespace dptrain::launcher {

namespace fs = std::filesystem;

namespace {

std::string kib(uintmax_t bytes) { return std::to_string((bytes + 512) / 1024) + " KiB"; }

}  // namespace

int run_quantize(const QuantizeArgs& args, Workers& workers) {
  if (workers.size() > 1) {
    throw UsageError("dptrain quantize runs as one process (it reads a few training batches): start it without "
                     "mpirun or srun");
  }
  if (args.calibration_batches == 0) {
    throw UsageError("dptrain quantize: --calibration-batches must be at least 1");
  }
  std::error_code ec;
  if (fs::exists(args.out, ec) && fs::equivalent(args.out, args.checkpoint, ec)) {
    throw UsageError("dptrain quantize: --out " + args.out + " is the checkpoint itself; write the quantized model "
                     "to another file");
  }
  RunConfig config = checkpoint_run_config(args.config, args.checkpoint, args.overrides, workers);
  CheckpointState state = read_checkpoint(args.checkpoint);
  if (!state.quantization.empty()) {
    throw CheckpointError(args.checkpoint, "is quantized already (dptrain quantize wrote it); quantize the "
                                           "checkpoint it was made from");
  }
  config.device = DeviceKind::CPU;  // calibration reads every layer's input on the host
  TrainingRun run(config, workers.comm(), quiet_trainer_options(workers));
  run.load_checkpoint_parameters(args.checkpoint);
  const Int8Calibration calibration = run.calibrate_int8(args.calibration_batches);
  std::vector<Int8LeftOut> left_out;
  std::vector<CheckpointQuantization> quantization = calibration.quantization(run.model(), &left_out);
  const size_t candidates = quantization.size() + left_out.size();
  if (quantization.empty()) {
    std::string why;
    for (const Int8LeftOut& left : left_out) why += "; " + left.weight + ": " + left.reason;
    throw UsageError("dptrain quantize: none of the " + std::to_string(candidates) + " conv2d and dense weights of " +
                     args.checkpoint + " can compute in int8" + why + "; nothing was written");
  }

  // An inference model: the int8 weights and the float32 rest, without optimizer state or pruning masks.
  state.quantization = std::move(quantization);
  state.optimizer_state.clear();
  state.masks.clear();
  write_checkpoint(args.out, state);

  size_t float_bytes = 0;
  for (const CheckpointTensor& t : state.parameters) float_bytes += t.values.size() * sizeof(float);
  std::printf("calibrated on %zu batches of training samples: int8 for %zu of %zu conv2d and dense weights\n",
              calibration.batches(), state.quantization.size(), candidates);
  for (const Int8LeftOut& left : left_out) {
    std::printf("  left in float32: %s: %s\n", left.weight.c_str(), left.reason.c_str());
  }
  std::printf("int8 arithmetic on this machine: %s\n", int8_arithmetic().c_str());
  std::printf("wrote %s: %s (%s: %s; its parameters in float32: %s); evaluate it with dptrain eval --checkpoint %s\n",
              args.out.c_str(), kib(fs::file_size(args.out)).c_str(), args.checkpoint.c_str(),
              kib(fs::file_size(args.checkpoint)).c_str(), kib(float_bytes).c_str(), args.out.c_str());
  return 0;
}

CLI::App* add_quantize_command(CLI::App& app, QuantizeArgs& args) {
  auto* cmd = app.add_subcommand(
      "quantize", "Write a checkpoint's model with int8 conv2d and dense weights, calibrated on training batches");
  cmd->add_option("checkpoint", args.checkpoint, "Checkpoint file (.h5)")->required();
  cmd->add_option("--out", args.out, "The quantized checkpoint to write (.h5; replaced whole, or left as it was on "
                                     "failure)")
      ->required();
  cmd->add_option("--calibration-batches", args.calibration_batches,
                  "Evaluation batches (train.eval_batch_size) of training samples the input ranges are taken from")
      ->capture_default_str();
  cmd->add_option("--config", args.config, "YAML run config (default: the config stored in the checkpoint)");
  cmd->add_option("--set", args.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  return cmd;
}

}  // namespace dptrain::launcher
