#include <cstdio>
#include <memory>

#include "comm/communicator.h"
#include "launcher/commands.h"
#include "launcher/stop_signals.h"
#include "launcher/workers.h"
#include "runtime/context.h"
#include "runtime/run_config.h"
#include "runtime/timeline.h"
#include "runtime/trainer.h"

namespace dptrain::launcher {

int run_train(const TrainArgs& args, Workers& workers) {
  if (!args.log_dir.empty()) workers.open_rank_log(args.log_dir);
  if (!args.timeline.empty() && workers.rank() == 0) check_timeline_path(args.timeline);
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
  if (!args.dry_run) options.stop_signal = &install_stop_handlers(workers.rank() == 0);
  std::unique_ptr<Timeline> timeline;
  if (!args.timeline.empty()) timeline = std::make_unique<Timeline>();
  options.timeline = timeline.get();
  Trainer trainer(config, workers.comm(), options);
  if (args.dry_run) {
    if (workers.rank() == 0) std::printf("%s\nconfig OK (dry run: nothing trained)\n", trainer.describe().c_str());
    return 0;
  }
  if (!args.resume.empty()) trainer.resume(args.resume);
  if (timeline) timeline->start(workers.comm(), deadline);
  trainer.run();
  if (timeline) {
    const size_t events = write_merged_timeline(*timeline, workers.comm(), args.timeline, deadline);
    if (workers.rank() == 0) {
      std::printf("timeline: %zu events from %zu worker(s) in %s (open it in https://ui.perfetto.dev)\n", events,
                  workers.size(), args.timeline.c_str());
    }
  }
  // Stopped with its position saved: success, to be resumed. Stopped without a checkpoint: the
  // conventional status of a process ended by that signal.
  if (trainer.stopped_by() != 0 && config.checkpoint.dir.empty()) return 128 + trainer.stopped_by();
  return 0;
}

}  // namespace dptrain::launcher
