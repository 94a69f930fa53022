// ReplicaSync: keeps every worker's replica of the model the same — the setup check when workers
// start or join, and rank 0's parameters, optimizer state and position copied to the others (at
// the start, on resume, when evaluating a checkpoint and in a joiner's hand-over).
#pragma once

#include <cstdint>
#include <string>

#include "comm/communicator.h"
#include "runtime/core/tensor.h"
#include "runtime/train/run_summary.h"

namespace dptrain {

class Model;
class Optimizer;

// What every worker must share with rank 0 to train in the same job.
struct SetupFingerprint {
  uint64_t config_hash = 0;
  uint64_t parameters = 0;
  uint64_t train_samples = 0;
};

// Copies rank 0's replica to every worker of the communicator each call is given (collective over
// it); checks first, where workers meet, that they built the same model from the same config.
class ReplicaSync {
 public:
  // `config_text`: the run's config as loaded; `train_samples`: the training set's size.
  ReplicaSync(Model& model, Optimizer& optimizer, const std::string& config_text, size_t train_samples,
              Deadline deadline);

  // Before training: fails (ConfigError) unless every worker built the same model from the same
  // config; then copies rank 0's parameters to all.
  void synchronize_start(Communicator& comm);
  // What differs between this worker's setup and rank 0's ("" when nothing does).
  std::string compare_setups(Communicator& comm);
  // When rank 0's `have_state` is true, copies rank 0's `position`, optimizer step count,
  // parameters and optimizer state to every worker. Returns rank 0's `have_state`.
  bool share_root_state(Communicator& comm, bool have_state, TrainingPosition& position);
  // Right after workers joined: compare_setups(), then (when nothing differs) share_root_state().
  // Returns what differs, or "".
  std::string share_with_joiners(Communicator& comm, TrainingPosition& position);
  // Copies rank 0's parameters and `position` (a checkpoint's, for evaluating it) to every worker;
  // returns rank 0's position.
  TrainingPosition share_root_parameters(Communicator& comm, const TrainingPosition& position);

 private:
  // Copies rank 0's `tensor` (host or device memory) to every worker, through the host.
  void broadcast_from_root(Communicator& comm, Tensor& tensor);

  Model& model_;
  Optimizer& optimizer_;
  SetupFingerprint self_;
  Deadline deadline_;
};

}  // namespace dptrain
