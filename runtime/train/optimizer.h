// Optimizers: update the one flat parameter buffer from the one flat gradient buffer, one backend
// update per stretch of parameters that share a weight decay (runtime/train/update_ranges.h).
//
// Config (the `optimizer:` mapping; the caller calls finish(), so keys of another type are rejected):
//   type: sgd                 # required: adam | sgd
//     lr: 0.1                 # required, > 0: the base learning rate the schedule starts from
//     momentum: 0.9           # default 0, in [0, 1)
//     nesterov: false         # default false; true needs momentum > 0
//     weight_decay: 5.0e-4    # default 0, >= 0; L2 term added to the gradient (torch.optim.SGD)
//   type: adam
//     lr: 1.0e-3              # required, > 0
//     beta1: 0.9              # default 0.9, in [0, 1)
//     beta2: 0.999            # default 0.999, in [0, 1)
//     eps: 1.0e-8             # default 1e-8, > 0
//     weight_decay: 0         # default 0, >= 0
//     decoupled_weight_decay: false  # default false (torch.optim.Adam); true = AdamW (torch.optim.AdamW)
//   either type:
//     weight_decay_exclude: [bias, norm]  # default []: parameters weight decay skips; bias = every
//                             # parameter named "bias", norm = every parameter of a normalisation layer
//     clip_grad_norm: 1.0     # default off, > 0: torch.nn.utils.clip_grad_norm_ before each update
//
// Frozen parameters (ParamUse::Frozen) are never updated: no step, no weight decay, no change to
// their optimizer state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"
#include "runtime/train/model.h"
#include "runtime/train/update_ranges.h"

namespace dptrain {

// What every optimizer takes besides its own hyper-parameters: the learning rate, the layout of
// the flat buffers and the settings read for either type.
struct OptimizerSetup {
  double base_lr = 0;
  size_t num_parameters = 0;               // length of the flat buffers, alignment padding included
  std::vector<UpdateRange> ranges;         // what step() updates, each with its weight decay
  std::vector<DecayExclusion> exclusions;  // optimizer.weight_decay_exclude
  size_t frozen_parameters = 0;            // elements of frozen entries, which no range covers
  std::optional<double> max_grad_norm;     // optimizer.clip_grad_norm; none: no clipping
};

// Updates the flat parameter buffer from the flat gradient buffer.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // "sgd", "adam" or "adamw".
  virtual const char* name() const = 0;
  // One line for logs, e.g. "sgd (lr 0.1, momentum 0.9, nesterov, weight_decay 0.0005 except bias, norm,
  // clip_grad_norm 1)".
  virtual std::string describe() const = 0;
  // grads are already the mean over the global batch; `lr` comes from the schedule (finite, >= 0).
  // Both buffers have num_parameters() elements and live on device() (ShapeError otherwise). The
  // update is the backend's (a kernel queued on the compute stream on a GPU), one per range of
  // ranges(); advances steps(). Frozen parameters and their state keep their bits.
  virtual void step(Tensor& params, const Tensor& grads, float lr) = 0;
  // torch.nn.utils.clip_grad_norm_ when optimizer.clip_grad_norm is set, otherwise nothing: the L2
  // norm of the trained gradients, and if max / (norm + 1e-6) < 1 every trained gradient is
  // multiplied by it. Call it between the all-reduce and step(): the gradients are then the
  // global-batch mean and the same on every worker, so every worker measures the same norm and
  // scales identically, and the replicas stay equal. Waits for the compute stream (the norm is
  // needed on the host). Same buffer checks as step().
  void clip_grad_norm(Tensor& grads);
  // The norm measured by the last clip_grad_norm call, before clipping; none while clipping is off
  // or before the first call.
  std::optional<double> last_grad_norm() const;
  // Named state tensors, flat and of num_parameters() elements, for checkpoints and broadcasts:
  // sgd with momentum {"momentum"}, plain sgd none, adam/adamw {"exp_avg", "exp_avg_sq"}.
  // They live on device(): copy them with Tensor::to / copy_from to read or write them on the host.
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;

  // Where the parameters, gradients and state tensors live.
  DeviceKind device() const { return backend_.device(); }

  // The configured optimizer.lr, which the LrSchedule scales.
  double base_lr() const { return setup_.base_lr; }
  size_t num_parameters() const { return setup_.num_parameters; }
  // The stretches of the flat buffers that step() updates.
  const std::vector<UpdateRange>& ranges() const { return setup_.ranges; }
  // Updates applied so far (Adam's bias correction uses it).
  uint64_t steps() const { return steps_; }
  // For resuming from a checkpoint, together with the tensors of state().
  void set_steps(uint64_t steps) { steps_ = steps; }

 protected:
  Optimizer(OptimizerSetup setup, Backend& backend);
  // Throws ShapeError unless both buffers are device() tensors of num_parameters() elements,
  // and Error unless lr is finite and >= 0.
  void check_step(const Tensor& params, const Tensor& grads, float lr) const;
  // What describe() adds after a weight decay of `weight_decay`: " except bias, norm" when
  // exclusions apply, or "".
  std::string decay_exclusions_text(double weight_decay) const;
  // What describe() adds at the end for either type, e.g. ", clip_grad_norm 1, 96 parameters frozen".
  std::string common_text() const;

  uint64_t steps_ = 0;
  Backend& backend_;  // holds the state tensors and applies the updates

 private:
  void check_buffer(const Tensor& t, const char* what) const;

  OptimizerSetup setup_;
  std::vector<ElementSpan> trained_spans_;  // ranges() with neighbours merged: where clipping measures
  // The last clipping's norm, one double in the backend's memory; null before the first.
  using DeviceDouble = std::unique_ptr<double, std::function<void(double*)>>;
  DeviceDouble grad_norm_;
};

// Reads the `optimizer:` mapping (the caller calls finish()) and builds the optimizer for flat
// buffers of `num_parameters` floats laid out as `entries` (the model's parameter_entries() and
// parameters().num_elements()) on `backend` (the model's), with zeroed state in its memory.
// Errors are ConfigError naming the key, ShapeError for a layout that does not fit the buffers.
// The optimizer must not outlive `backend`.
std::unique_ptr<Optimizer> make_optimizer(ConfigMap& optimizer, const std::vector<ParamEntry>& entries,
                                          size_t num_parameters, Backend& backend);

}  // namespace dptrain
