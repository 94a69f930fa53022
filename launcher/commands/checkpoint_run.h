// What the commands that run a saved model (eval, export) share: the run config and trainer options.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/run_config.h"
#include "runtime/train/trainer_options.h"

namespace dptrain::launcher {

class Workers;

// The run config of checkpoint `checkpoint`: `config_path` with `overrides` when given, else the
// config the checkpoint stores. Its thread count is settled (0: this node's share of the cores) and
// checked against the process limits before any thread pool starts. A quantized checkpoint (dptrain
// quantize) runs on the CPU, whatever the config says.
RunConfig checkpoint_run_config(const std::string& config_path, const std::string& checkpoint,
                                const std::vector<std::string>& overrides, const Workers& workers);

// Trainer options of a run that only evaluates or reads a model: no progress line, no log.
TrainerOptions quiet_trainer_options(const Workers& workers);

}  // namespace dptrain::launcher
