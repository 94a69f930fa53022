#include "runtime/train/fine_tune.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return parameter_matches(p, name); });
}

bool matches_entry(const std::string& pattern, const std::vector<ParamEntry>& entries) {
  return std::any_of(entries.begin(), entries.end(), [&](const ParamEntry& e) { return parameter_matches(pattern, e.name); });
}

// Copies the checkpoint's tensors into `flat` (host) for every entry not skipped; records the skipped ones.
void copy_tensors(const std::vector<CheckpointTensor>& tensors, const std::vector<ParamEntry>& entries,
                  const InitSettings& init, const std::string& what, Tensor& flat, InitialStateLoad& load) {
  std::map<std::string, const CheckpointTensor*> by_name;
  for (const CheckpointTensor& t : tensors) by_name.emplace(t.name, &t);
  for (const ParamEntry& e : entries) {
    if (matches_any(init.skip, e.name)) {
      load.skipped.push_back(e.name);
      continue;
    }
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) {
      throw CheckpointError(init.from, "has no " + what + " '" + e.name + "' " + to_string(e.shape) +
                                           ", which the model has: add it to init.skip to keep its initial values, "
                                           "or start from a checkpoint of this model");
    }
    const CheckpointTensor& t = *it->second;
    if (t.shape != e.shape) {
      throw CheckpointError(init.from, what + " '" + e.name + "' has shape " + to_string(t.shape) +
                                           " in the checkpoint, but " + to_string(e.shape) +
                                           " in the model: add it (or its layer) to init.skip, e.g. skip: [" +
                                           e.name.substr(0, e.name.rfind('.')) + "], to keep its initial values");
    }
    std::copy(t.values.begin(), t.values.end(), flat.data() + e.offset);
    ++load.loaded_tensors;
  }
}

}  // namespace

void check_init_entries(const InitSettings& init, const Model& model) {
  const std::vector<ParamEntry>& params = model.parameter_entries();
  const std::vector<ParamEntry>& buffers = model.buffer_entries();
  for (const std::string& entry : init.skip) {
    if (!matches_entry(entry, params) && !matches_entry(entry, buffers)) {
      init.section->fail("skip", "entry '" + entry + "' matches no parameter or buffer of the model; entries are "
                                 "layer or parameter names (fc, fc.weight), dotted prefixes (layer4) or 'prefix*'");
    }
  }
  for (const std::string& entry : init.freeze) {
    if (!matches_entry(entry, params)) {
      init.section->fail("freeze", "entry '" + entry + "' matches no parameter of the model; entries are layer or "
                                   "parameter names (conv1, bn1.weight), dotted prefixes (layer1) or 'prefix*'");
    }
  }
}

InitialStateLoad load_initial_state(const InitSettings& init, Model& model) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(init.from, ec)) {
    init.section->fail("from", "no checkpoint file '" + init.from +
                                   "' (relative paths start in the working directory); convert torchvision weights "
                                   "with scripts/convert_torchvision.py or give a dptrain checkpoint");
  }
  const CheckpointState state = read_checkpoint(init.from);
  InitialStateLoad load;
  load.from = init.from;
  Tensor params = model.host_parameters();
  copy_tensors(state.parameters, model.parameter_entries(), init, "parameter", params, load);
  Tensor buffers = model.host_buffers();
  copy_tensors(state.buffers, model.buffer_entries(), init, "buffer", buffers, load);
  model.load_parameters(params);
  model.load_buffers(buffers);
  return load;
}

std::string describe_initial_state(const InitialStateLoad& load) {
  std::string text = "init: loaded " + std::to_string(load.loaded_tensors) + " tensors from " + load.from;
  if (load.skipped.empty()) return text;
  text += "; left as initialised:";
  for (size_t i = 0; i < load.skipped.size(); ++i) text += (i ? ", " : " ") + load.skipped[i];
  return text;
}

}  // namespace dptrain
