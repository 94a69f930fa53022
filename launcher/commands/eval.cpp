#include <CLI/CLI.hpp>

#include <cstdio>

#include "launcher/commands/checkpoint_run.h"
#include "launcher/commands/commands.h"
#include "launcher/workers.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/context.h"
#include "runtime/core/run_config.h"
#include "runtime/report/metrics.h"
#include "runtime/train/training_run.h"

namespace dptrain::launcher {

int run_eval(const EvalArgs& args, Workers& workers) {
  // Without a config file, the run's own config as the checkpoint stores it.
  RunConfig config = checkpoint_run_config(args.config, args.checkpoint, args.overrides, workers);
  const TrainerOptions options = quiet_trainer_options(workers);
  TrainingRun run(config, workers.comm(), options);
  const CheckpointEvaluation evaluation = run.evaluate_checkpoint(args.checkpoint);
  const TrainingPosition& at = evaluation.position;
  const EvalResult& result = evaluation.test;
  if (workers.rank() != 0) return 0;
  const double rate = evaluation.seconds > 0 ? static_cast<double>(result.samples) / evaluation.seconds : 0;
  if (args.json) {
    std::printf("%s\n", MetricsRecord("eval")
                            .add("checkpoint", args.checkpoint)
                            .add("epoch", static_cast<double>(at.epoch))
                            .add("step_in_epoch", static_cast<double>(at.step_in_epoch))
                            .add("step", static_cast<double>(at.global_step))
                            .add("world_size", static_cast<double>(workers.size()))
                            .add("test_loss", result.loss)
                            .add("test_accuracy", result.accuracy)
                            .add("samples", static_cast<double>(result.samples))
                            .add("seconds", evaluation.seconds)
                            .add("samples_per_second", rate)
                            .add("int8_kernels", evaluation.int8_kernels)
                            .to_json()
                            .c_str());
  } else {
    std::printf("%s (%zu epochs + %zu steps trained, global step %llu): test loss %.4f, test accuracy %.4f on %zu "
                "samples in %.2f s (%.0f samples/s%s%s)\n",
                args.checkpoint.c_str(), at.epoch, at.step_in_epoch, static_cast<unsigned long long>(at.global_step),
                result.loss, result.accuracy, result.samples, evaluation.seconds, rate,
                evaluation.int8_kernels.empty() ? "" : "; int8: ", evaluation.int8_kernels.c_str());
  }
  return 0;
}

CLI::App* add_eval_command(CLI::App& app, EvalArgs& args) {
  auto* cmd = app.add_subcommand("eval", "Test loss and accuracy of a checkpoint");
  cmd->add_option("config", args.config, "YAML run config (default: the config stored in the checkpoint)");
  cmd->add_option("--checkpoint", args.checkpoint, "Checkpoint file (.h5)")->required();
  cmd->add_option("--set", args.overrides, "Override a config key (repeatable)")->allow_extra_args(false);
  cmd->add_flag("--json", args.json, "Print one JSON object");
  return cmd;
}

}  // namespace dptrain::launcher
