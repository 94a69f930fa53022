#include "launcher/commands/checkpoint_run.h"

#include "launcher/workers.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/context.h"
#include "runtime/core/thread_limits.h"

namespace dptrain::launcher {

RunConfig checkpoint_run_config(const std::string& config_path, const std::string& checkpoint,
                                const std::vector<std::string>& overrides, const Workers& workers) {
  const CheckpointState header = read_checkpoint(checkpoint, CheckpointContents::Header);
  RunConfig config = config_path.empty() ? RunConfig::parse(header.config_text, checkpoint + ":/config", overrides)
                                         : RunConfig::load(config_path, overrides);
  if (!header.quantization.empty()) {  // int8 arithmetic runs on the CPU
    config.device = DeviceKind::CPU;
    config.device_reason = "a quantized model computes in int8 on the cpu";
  }
  if (config.threads == 0) config.threads = default_thread_count(workers.local().size);
  check_thread_limits(config.threads, config.file + ": threads");  // before any thread pool starts
  return config;
}

TrainerOptions quiet_trainer_options(const Workers& workers) {
  TrainerOptions options;
  options.progress = ProgressStyle::Off;
  options.log = nullptr;
  options.workers_on_node = workers.local().size;
  return options;
}

}  // namespace dptrain::launcher
