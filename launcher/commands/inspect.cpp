// dptrain inspect: a checkpoint's contents and checksum status, for people and scripts.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "launcher/commands/inspect_command.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/errors.h"

namespace dptrain::launcher {

CLI::App* add_inspect_command(CLI::App& app, InspectArgs& args) {
  auto* inspect = app.add_subcommand(
      "inspect", "Show a checkpoint's position, run, optimizer, layout and config, and verify its checksums");
  inspect->add_option("file", args.file, "Checkpoint file, e.g. checkpoints/ckpt-e000003-s00000123.h5")->required();
  return inspect;
}

namespace {

int report_error(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "dptrain: error: %s\n", message.c_str());
  return 1;
}

void print_layout(const std::vector<CheckpointObject>& layout) {
  size_t width = 0;
  for (const CheckpointObject& object : layout) width = std::max(width, object.path.size());
  std::printf("layout:\n");
  for (const CheckpointObject& object : layout) {
    std::string description = "other";
    if (object.kind == CheckpointObjectKind::Group) description = "group";
    if (object.kind == CheckpointObjectKind::Dataset) description = object.dtype + " " + to_string(object.shape);
    std::printf("  %-*s  %s\n", static_cast<int>(width), object.path.c_str(), description.c_str());
  }
}

void print_state(const std::string& file, const CheckpointState& state) {
  size_t values = 0;
  for (const CheckpointTensor& t : state.parameters) values += num_elements(t.shape);
  std::string states;
  for (const CheckpointOptimizerState& s : state.optimizer_state) states += (states.empty() ? "" : ", ") + s.name;
  std::printf("checkpoint: %s\n", file.c_str());
  std::printf("format: %s version %u, written by dptrain %s\n", kCheckpointFormat, state.format_version,
              state.dptrain_version.c_str());
  std::printf("run: %s\n", state.run_name.empty() ? "(unnamed)" : state.run_name.c_str());
  std::printf("epoch: %llu (0-based, the epoch to continue in)\n", static_cast<unsigned long long>(state.epoch));
  std::printf("step_in_epoch: %llu of %llu\n", static_cast<unsigned long long>(state.step_in_epoch),
              static_cast<unsigned long long>(state.steps_per_epoch));
  std::printf("global_step: %llu\n", static_cast<unsigned long long>(state.global_step));
  std::printf("global_batch: %llu, dataset_size: %llu, seed: %llu\n",
              static_cast<unsigned long long>(state.global_batch), static_cast<unsigned long long>(state.dataset_size),
              static_cast<unsigned long long>(state.seed));
  std::printf("world_size at save: %llu\n", static_cast<unsigned long long>(state.world_size));
  if (!state.input_shape.empty()) std::printf("input_shape: %s\n", to_string(state.input_shape).c_str());
  if (!state.class_names.empty()) {
    std::string names;
    for (size_t i = 0; i < state.class_names.size() && i < 10; ++i) names += (i ? ", " : "") + state.class_names[i];
    if (state.class_names.size() > 10) names += ", ...";
    std::printf("classes: %zu named (%s)\n", state.class_names.size(), names.c_str());
  }
  std::printf("parameters: %zu in %zu tensors\n", values, state.parameters.size());
  if (!state.buffers.empty()) {
    size_t buffer_values = 0;
    for (const CheckpointTensor& t : state.buffers) buffer_values += num_elements(t.shape);
    std::printf("buffers (non-trained state): %zu in %zu tensors\n", buffer_values, state.buffers.size());
  }
  std::printf("optimizer: %s, %llu steps, state: %s\n", state.optimizer_name.c_str(),
              static_cast<unsigned long long>(state.optimizer_steps), states.empty() ? "none" : states.c_str());
}

void print_text(const char* title, const std::string& text) {
  if (text.empty()) {
    std::printf("%s: none\n", title);
    return;
  }
  std::printf("%s:\n", title);
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = std::min(text.find('\n', begin), text.size());
    std::printf("  %s\n", text.substr(begin, end - begin).c_str());
    begin = end + 1;
  }
}

}  // namespace

int run_inspect(const InspectArgs& args) {
  std::vector<CheckpointObject> layout;
  try {
    layout = checkpoint_layout(args.file);
  } catch (const CheckpointError& e) {
    return report_error(e.what());
  }
  CheckpointState state;
  try {
    state = read_checkpoint(args.file, CheckpointContents::Header);
  } catch (const CheckpointError& e) {
    std::printf("checkpoint: %s\n", args.file.c_str());
    print_layout(layout);
    return report_error(e.what());
  }
  print_state(args.file, state);
  print_layout(layout);
  print_text("config", state.config_text);
  print_text("metrics", state.metrics_json);
  try {
    const size_t datasets = verify_checkpoint(args.file);
    std::printf("checksums: OK (%zu datasets)\n", datasets);
  } catch (const CheckpointError& e) {
    std::printf("checksums: FAILED\n");
    return report_error(e.what());
  }
  return 0;
}

}  // namespace dptrain::launcher
