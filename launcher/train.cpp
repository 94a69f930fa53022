#include <cstdio>

#include "comm/communicator.h"
#include "launcher/commands.h"
#include "launcher/workers.h"
#include "runtime/context.h"
#include "runtime/run_config.h"
#include "runtime/trainer.h"

namespace dptrain::launcher {

int run_train(const TrainArgs& args, Workers& workers) {
  if (!args.log_dir.empty()) workers.open_rank_log(args.log_dir);
  RunConfig config = RunConfig::load(args.config, args.overrides);
  if (config.threads == 0) config.threads = default_thread_count(workers.local().size);
  const Deadline deadline(static_cast<int64_t>(config.comm.timeout_seconds * 1000));
  const std::string world = workers.describe(config.threads, deadline);
  if (workers.rank() == 0) std::printf("%s\n", world.c_str());
  if (std::FILE* log = workers.rank_log()) std::fprintf(log, "%s\n", world.c_str());

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
  options.rank_log = workers.rank_log();
  options.workers_on_node = workers.local().size;
  Trainer trainer(config, workers.comm(), options);
  if (args.dry_run) {
    if (workers.rank() == 0) std::printf("%s\nconfig OK (dry run: nothing trained)\n", trainer.describe().c_str());
    return 0;
  }
  trainer.run();
  return 0;
}

}  // namespace dptrain::launcher
