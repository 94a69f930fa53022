#include "runtime/train/model_state.h"

#include <algorithm>
#include <map>

#include "runtime/core/errors.h"

namespace dptrain {

namespace {

// Checks that `tensors` hold exactly the parameters of `entries` (by name and shape, with values).
std::vector<const CheckpointTensor*> match_tensors(const std::vector<CheckpointTensor>& tensors,
                                                   const std::vector<ParamEntry>& entries, const Tensor& flat,
                                                   const std::string& what, const std::string& source) {
  const std::string fix =
      "; resume with the config the checkpoint was written with (`dptrain inspect " + source + "` prints it)";
  std::map<std::string, const CheckpointTensor*> by_name;
  for (const CheckpointTensor& t : tensors) {
    if (!by_name.emplace(t.name, &t).second) throw CheckpointError(source, what + " '" + t.name + "' appears twice");
  }
  std::vector<const CheckpointTensor*> matched;
  for (const ParamEntry& e : entries) {
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      throw CheckpointError(source, "has no " + what + " '" + e.name + "' " + to_string(e.shape) +
                                        ", which the model has: it was written for another model" + fix);
    }
    const CheckpointTensor& t = *it->second;
    if (t.shape != e.shape) {
      throw CheckpointError(source, what + " '" + e.name + "' has shape " + to_string(t.shape) +
                                        ", but the model's is " + to_string(e.shape) + fix);
    }
    if (t.values.size() != num_elements(e.shape)) {
      throw CheckpointError(source, what + " '" + e.name + "' holds " + std::to_string(t.values.size()) +
                                        " values for shape " + to_string(e.shape) +
                                        " (read it with CheckpointContents::Everything)");
    }
    if (e.offset + t.values.size() > flat.num_elements()) {
      throw ShapeError("parameter '" + e.name + "' at offset " + std::to_string(e.offset) +
                       " lies outside a flat buffer of " + std::to_string(flat.num_elements()) + " values");
    }
    matched.push_back(&t);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    throw CheckpointError(source, "has " + what + " '" + by_name.begin()->first +
                                      "', which the model lacks: it was written for another model" + fix);
  }
  return matched;
}

void check_host(const Tensor& flat) {
  if (flat.device() != DeviceKind::CPU) {
    throw Error(std::string("checkpoints copy host memory; this buffer is on ") + to_string(flat.device()) +
                ": copy it to the host first");
  }
}

}  // namespace

std::vector<CheckpointTensor> tensors_from_flat(const std::vector<ParamEntry>& entries, const Tensor& flat) {
  check_host(flat);
  std::vector<CheckpointTensor> tensors;
  tensors.reserve(entries.size());
  for (const ParamEntry& e : entries) {
    const size_t n = num_elements(e.shape);
    if (e.offset + n > flat.num_elements()) {
      throw ShapeError("parameter '" + e.name + "' " + to_string(e.shape) + " at offset " + std::to_string(e.offset) +
                       " lies outside a flat buffer of " + std::to_string(flat.num_elements()) + " values");
    }
    tensors.push_back({e.name, e.shape, std::vector<float>(flat.data() + e.offset, flat.data() + e.offset + n)});
  }
  return tensors;
}

void tensors_to_flat(const std::vector<CheckpointTensor>& tensors, const std::vector<ParamEntry>& entries, Tensor& flat,
                     const std::string& source, const std::string& what) {
  check_host(flat);
  const std::vector<const CheckpointTensor*> matched = match_tensors(tensors, entries, flat, what, source);
  for (size_t i = 0; i < entries.size(); ++i) {
    std::copy(matched[i]->values.begin(), matched[i]->values.end(), flat.data() + entries[i].offset);
  }
}

void capture_optimizer(Optimizer& optimizer, const std::vector<ParamEntry>& entries, CheckpointState& state) {
  state.optimizer_name = optimizer.name();
  state.optimizer_steps = optimizer.steps();
  state.optimizer_state.clear();
  for (const auto& [name, tensor] : optimizer.state()) {
    const Tensor host = tensor->device() == DeviceKind::CPU ? *tensor : tensor->to_host();
    state.optimizer_state.push_back({name, tensors_from_flat(entries, host)});
  }
}

void restore_optimizer(const CheckpointState& state, const std::vector<ParamEntry>& entries, Optimizer& optimizer,
                       const std::string& source) {
  const std::string fix = "; resume with the optimizer settings the checkpoint was written with (`dptrain inspect " +
                          source + "` prints its config)";
  if (state.optimizer_name != optimizer.name()) {
    throw CheckpointError(source, "was written by optimizer '" + state.optimizer_name + "', but the config builds '" +
                                      optimizer.name() + "'" + fix);
  }
  const std::vector<std::pair<std::string, Tensor*>> targets = optimizer.state();
  auto names = [](auto& list) {
    std::string joined;
    for (const auto& item : list) joined += (joined.empty() ? "" : ", ") + item.first;
    return "[" + joined + "]";
  };
  std::vector<std::pair<std::string, const CheckpointOptimizerState*>> saved;
  for (const CheckpointOptimizerState& s : state.optimizer_state) saved.emplace_back(s.name, &s);
  bool same = targets.size() == saved.size();
  for (size_t i = 0; same && i < targets.size(); ++i) same = targets[i].first == saved[i].first;
  if (!same) {
    throw CheckpointError(source, "holds optimizer state " + names(saved) + ", but the configured " + optimizer.name() +
                                      " keeps " + names(targets) + fix);
  }
  // Everything is checked before anything is copied; device state goes through a host copy.
  std::vector<Tensor> hosts;
  std::vector<std::vector<const CheckpointTensor*>> matched;
  for (size_t i = 0; i < targets.size(); ++i) {
    const Tensor& target = *targets[i].second;
    hosts.push_back(target.device() == DeviceKind::CPU ? target : target.to_host());
    matched.push_back(match_tensors(saved[i].second->tensors, entries, hosts[i],
                                    "optimizer state '" + targets[i].first + "' of parameter", source));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = 0; j < entries.size(); ++j) {
      std::copy(matched[i][j]->values.begin(), matched[i][j]->values.end(), hosts[i].data() + entries[j].offset);
    }
    if (targets[i].second->device() != DeviceKind::CPU) targets[i].second->copy_from(hosts[i]);
  }
  optimizer.set_steps(state.optimizer_steps);
}

}  // namespace dptrain
