#include "runtime/train/replica_sync.h"

#include <functional>
#include <vector>

#include "runtime/core/errors.h"
#include "runtime/core/rng.h"
#include "runtime/train/model.h"
#include "runtime/train/optimizer.h"

namespace dptrain {

namespace {

// Rank 0's position and optimizer step count, as it broadcasts them (found: it has a state to share).
struct StateHeader {
  uint64_t found = 0;
  uint64_t epoch = 0;
  uint64_t step_in_epoch = 0;
  uint64_t global_step = 0;
  uint64_t optimizer_steps = 0;
};

}  // namespace

ReplicaSync::ReplicaSync(Model& model, Optimizer& optimizer, const std::string& config_text, size_t train_samples,
                         Deadline deadline)
    : model_(model),
      optimizer_(optimizer),
      self_{hash_key(std::hash<std::string>{}(config_text), 0, 0), model.parameters().num_elements(), train_samples},
      deadline_(deadline) {}

void ReplicaSync::synchronize_start(Communicator& comm) {
  if (comm.size() == 1) return;
  const std::string differs = compare_setups(comm);
  if (!differs.empty()) throw ConfigError(differs);
  Tensor params = model_.host_parameters();
  comm.broadcast(params.data(), params.num_elements() * sizeof(float), 0, deadline_);
  model_.load_parameters(params);
  broadcast_from_root(comm, model_.buffers());
}

std::string ReplicaSync::compare_setups(Communicator& comm) {
  std::vector<SetupFingerprint> all(comm.size());
  comm.all_gather(&self_, sizeof(self_), all.data(), deadline_);
  for (size_t r = 1; r < all.size(); ++r) {
    const SetupFingerprint& f = all[r];
    if (f.config_hash != all[0].config_hash || f.parameters != all[0].parameters ||
        f.train_samples != all[0].train_samples) {
      return "rank " + std::to_string(r) + " differs from rank 0: config " +
             (f.config_hash == all[0].config_hash ? "same" : "different") + ", " + std::to_string(f.parameters) +
             " vs " + std::to_string(all[0].parameters) + " parameters, " + std::to_string(f.train_samples) + " vs " +
             std::to_string(all[0].train_samples) +
             " training samples; every worker must load the same config file, --set overrides and data";
    }
  }
  return "";
}

bool ReplicaSync::share_root_state(Communicator& comm, bool have_state, TrainingPosition& position) {
  StateHeader header{have_state ? 1u : 0u, position.epoch, position.step_in_epoch, position.global_step,
                     optimizer_.steps()};
  comm.broadcast(&header, sizeof(header), 0, deadline_);
  if (!header.found) return false;
  // Host copies travel over the host communicator, whatever device the model is on.
  broadcast_from_root(comm, model_.parameters());
  broadcast_from_root(comm, model_.buffers());
  for (const auto& [name, tensor] : optimizer_.state()) broadcast_from_root(comm, *tensor);
  optimizer_.set_steps(header.optimizer_steps);
  position = {header.epoch, header.step_in_epoch, header.global_step};
  return true;
}

std::string ReplicaSync::share_with_joiners(Communicator& comm, TrainingPosition& position) {
  const std::string differs = compare_setups(comm);
  if (!differs.empty()) return differs;
  share_root_state(comm, true, position);
  return "";
}

TrainingPosition ReplicaSync::share_root_parameters(Communicator& comm, const TrainingPosition& position) {
  StateHeader header{1, position.epoch, position.step_in_epoch, position.global_step, 0};
  comm.broadcast(&header, sizeof(header), 0, deadline_);
  broadcast_from_root(comm, model_.parameters());
  broadcast_from_root(comm, model_.buffers());
  return {header.epoch, header.step_in_epoch, header.global_step};
}

void ReplicaSync::broadcast_from_root(Communicator& comm, Tensor& tensor) {
  if (comm.size() == 1) return;
  if (tensor.device() == DeviceKind::CPU) {
    comm.broadcast(tensor.data(), tensor.size_bytes(), 0, deadline_);
    return;
  }
  Tensor host = tensor.to_host();
  comm.broadcast(host.data(), host.size_bytes(), 0, deadline_);
  tensor.copy_from(host);
}

}  // namespace dptrain
