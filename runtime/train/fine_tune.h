// Fine-tuning: a fresh run that starts from another model's parameters and batch-norm statistics
// (a dptrain checkpoint, or torchvision weights converted by scripts/convert_torchvision.py),
// loaded by name, with some layers left to their own initialisation and some frozen.
#pragma once

#include <string>
#include <vector>

#include "runtime/core/run_config.h"
#include "runtime/train/model.h"

namespace dptrain {

// What load_initial_state took from the checkpoint and what it left as initialised.
struct InitialStateLoad {
  std::string from;                    // the checkpoint file
  size_t loaded_tensors = 0;           // parameters and buffers copied
  std::vector<std::string> skipped;    // model tensors left as initialised (matched by init.skip), in model order
};

// Checks every init.skip and init.freeze entry against the model's tensors: one that matches no
// parameter (skip: no parameter and no buffer) is a ConfigError naming the key and the entry.
void check_init_entries(const InitSettings& init, const Model& model);

// Loads the model's parameters and buffers from init.from by name, except those matched by an
// init.skip entry (parameter_matches), which keep the values the model was initialised with. Every
// other model tensor must be in the checkpoint with the model's shape: a missing one, or one of
// another shape (both shapes named, and `skip` suggested), is a CheckpointError naming the file.
// Checkpoint tensors the model lacks are ignored (a classifier replaced under another name).
// Call it on one worker (rank 0); the replicas' start-up broadcast shares the result.
InitialStateLoad load_initial_state(const InitSettings& init, Model& model);

// "loaded 122 tensors from FILE; left as initialised: fc.weight, fc.bias", for the run's log.
std::string describe_initial_state(const InitialStateLoad& load);

}  // namespace dptrain
