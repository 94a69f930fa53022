#include <cstdio>

#include "comm/communicator.h"
#include "launcher/commands.h"
#include "runtime/run_config.h"
#include "runtime/trainer.h"

namespace dptrain::launcher {

int run_train(const TrainArgs& args) {
  RunConfig config = RunConfig::load(args.config, args.overrides);
  SingleProcessCommunicator comm;
  TrainerOptions options;
  options.metrics_path = args.metrics;
  if (args.progress == "auto") {
    options.progress = detect_progress_style(stdout);
  } else if (args.progress == "terminal") {
    options.progress = ProgressStyle::Terminal;
  } else if (args.progress == "plain") {
    options.progress = ProgressStyle::Plain;
  } else {
    options.progress = ProgressStyle::Off;
  }
  Trainer trainer(config, comm, options);
  if (args.dry_run) {
    std::printf("%s\nconfig OK (dry run: nothing trained)\n", trainer.describe().c_str());
    return 0;
  }
  trainer.run();
  return 0;
}

}  // namespace dptrain::launcher
