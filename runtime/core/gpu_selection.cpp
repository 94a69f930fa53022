#include "runtime/core/gpu_selection.h"

#include <algorithm>
#include <string>

#include "runtime/core/errors.h"

namespace dptrain {

size_t gpu_for_worker(size_t visible_gpus, size_t workers_on_node, size_t local_rank) {
  if (visible_gpus == 0) {
    throw UsageError(
        "device 'cuda' was asked for but no CUDA device is visible to this worker: set device: auto "
        "or cpu, or run on a machine with a GPU");
  }
  if (visible_gpus == 1) return 0;
  if (workers_on_node > visible_gpus || local_rank >= visible_gpus) {
    const size_t workers = std::max(workers_on_node, local_rank + 1);
    throw UsageError(std::to_string(workers) + " workers on this node but only " + std::to_string(visible_gpus) +
                     " GPUs visible: start at most one worker per GPU (mpirun --npernode " +
                     std::to_string(visible_gpus) + "), give each worker its own GPU (srun --gpus-per-task=1), " +
                     "or set device: cpu");
  }
  return local_rank;
}

}  // namespace dptrain
