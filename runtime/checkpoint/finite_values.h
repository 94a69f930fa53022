// Whether a checkpoint's tensors hold only finite values: a state with nan or inf is never written
// and never resumed from.
#pragma once

#include <optional>
#include <string>

#include "runtime/checkpoint/checkpoint.h"

namespace dptrain {

// The first tensor of `state` (parameters, buffers, optimizer state) holding a non-finite value, as
// "dataset /parameters/0.dense.weight (element 3 of 40: nan)"; nullopt when every value is finite.
std::optional<std::string> non_finite_dataset(const CheckpointState& state);

// Throws CheckpointError naming `path` and the dataset when `state` (read from `path` to resume or
// evaluate) holds nan or inf: such a file was written by a run that diverged, or was edited.
void refuse_non_finite(const std::string& path, const CheckpointState& state);

}  // namespace dptrain
