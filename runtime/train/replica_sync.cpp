// Trainer: what changes when workers join a running job — the setup check and the state hand-over.
#include <functional>
#include <string>
#include <vector>

#include "runtime/core/rng.h"
#include "runtime/train/trainer.h"

namespace dptrain {

namespace {

// What every worker must share with rank 0 to train in the same job.
struct SetupFingerprint {
  uint64_t config_hash;
  uint64_t parameters;
  uint64_t train_samples;
};

}  // namespace

std::string Trainer::compare_setups() {
  const SetupFingerprint self{hash_key(std::hash<std::string>{}(config_.text), 0, 0),
                              model_->parameters().num_elements(), data_.train->size()};
  std::vector<SetupFingerprint> all(comm_->size());
  comm_->all_gather(&self, sizeof(self), all.data(), deadline_);
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

std::string Trainer::share_state_with_joiners() {
  const std::string differs = compare_setups();
  if (!differs.empty()) return differs;
  share_root_state(true);
  return "";
}

}  // namespace dptrain
