// Which of the visible GPUs a worker binds to.
#pragma once

#include <cstddef>

namespace dptrain {

// The ordinal of the GPU for the worker of `local_rank` among `workers_on_node` workers on a node
// where this process sees `visible_gpus` GPUs:
//  - exactly one visible: 0, whatever the local rank. The launcher gave each worker its own GPU
//    (Slurm --gpus-per-task=1, CUDA_VISIBLE_DEVICES per task); were it one GPU shared by several
//    workers, NCCL reports the duplicate device when the communicator is created;
//  - several visible: the local rank's, so workers split the node's GPUs one each;
// UsageError when none is visible, or when several are and the node has more workers than GPUs.
size_t gpu_for_worker(size_t visible_gpus, size_t workers_on_node, size_t local_rank);

}  // namespace dptrain
