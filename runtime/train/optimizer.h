// Optimizers: update the one flat parameter buffer from the one flat gradient buffer, in one pass.
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
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/backend.h"
#include "runtime/core/config_map.h"
#include "runtime/core/tensor.h"

namespace dptrain {

// Updates the flat parameter buffer from the flat gradient buffer.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // "sgd", "adam" or "adamw".
  virtual const char* name() const = 0;
  // One line for logs, e.g. "sgd (lr 0.1, momentum 0.9, nesterov, weight_decay 0.0005)".
  virtual std::string describe() const = 0;
  // grads are already the mean over the global batch; `lr` comes from the schedule (finite, >= 0).
  // Both buffers have num_parameters() elements and live on device() (ShapeError otherwise). The
  // update is the backend's (a kernel queued on the compute stream on a GPU). Applies one update
  // and advances steps().
  virtual void step(Tensor& params, const Tensor& grads, float lr) = 0;
  // Named state tensors, flat and of num_parameters() elements, for checkpoints and broadcasts:
  // sgd with momentum {"momentum"}, plain sgd none, adam/adamw {"exp_avg", "exp_avg_sq"}.
  // They live on device(): copy them with Tensor::to / copy_from to read or write them on the host.
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;

  // Where the parameters, gradients and state tensors live.
  DeviceKind device() const { return backend_.device(); }

  // The configured optimizer.lr, which the LrSchedule scales.
  double base_lr() const { return base_lr_; }
  size_t num_parameters() const { return num_parameters_; }
  // Updates applied so far (Adam's bias correction uses it).
  uint64_t steps() const { return steps_; }
  // For resuming from a checkpoint, together with the tensors of state().
  void set_steps(uint64_t steps) { steps_ = steps; }

 protected:
  Optimizer(double base_lr, size_t num_parameters, Backend& backend)
      : backend_(backend), base_lr_(base_lr), num_parameters_(num_parameters) {}
  // Throws ShapeError unless both buffers are device() tensors of num_parameters() elements,
  // and Error unless lr is finite and >= 0.
  void check_step(const Tensor& params, const Tensor& grads, float lr) const;

  uint64_t steps_ = 0;
  Backend& backend_;  // holds the state tensors and applies the updates

 private:
  double base_lr_;
  size_t num_parameters_;
};

// Reads the `optimizer:` mapping (the caller calls finish()) and builds the optimizer for a model
// of `num_parameters` parameters on `backend` (the model's), with zeroed state in its memory.
// Errors are ConfigError naming the key. The optimizer must not outlive `backend`.
std::unique_ptr<Optimizer> make_optimizer(ConfigMap& optimizer, size_t num_parameters, Backend& backend);

}  // namespace dptrain
