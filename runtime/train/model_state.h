// The conversion between checkpoint tensors (runtime/checkpoint/checkpoint.h) and the model's and
// optimizer's flat buffers.
#pragma once

#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint.h"
#include "runtime/core/tensor.h"
#include "runtime/train/model.h"
#include "runtime/train/optimizer.h"

namespace dptrain {

// The parameters in `flat` (a host buffer laid out as `entries` describe) as named tensors, in order.
// Throws ShapeError when an entry lies outside `flat`.
std::vector<CheckpointTensor> tensors_from_flat(const std::vector<ParamEntry>& entries, const Tensor& flat);

// Copies `tensors` into `flat` (a host buffer laid out as `entries` describe), matching them by name.
// Every entry needs a tensor of its name and shape, and there must be no other tensor: otherwise
// CheckpointError naming `source` (the checkpoint file) and the first difference. Padding is left as is.
// `what` names the kind of tensor in messages: "parameter", or "buffer" for non-trained state.
void tensors_to_flat(const std::vector<CheckpointTensor>& tensors, const std::vector<ParamEntry>& entries, Tensor& flat,
                     const std::string& source, const std::string& what = "parameter");

// Fills optimizer_name, optimizer_steps and optimizer_state of `state` from `optimizer`.
void capture_optimizer(Optimizer& optimizer, const std::vector<ParamEntry>& entries, CheckpointState& state);

// Restores `optimizer`'s state tensors and step count from `state`. The optimizer must have the same
// name and states as the checkpoint's, else CheckpointError naming `source`.
void restore_optimizer(const CheckpointState& state, const std::vector<ParamEntry>& entries, Optimizer& optimizer,
                       const std::string& source);

}  // namespace dptrain
