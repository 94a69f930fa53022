// Helpers of the multi-process tests: a small run config, sub-communicators of the first ranks, the
// world's size and root, and how far two parameter vectors are apart.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "tests/test_util.h"

namespace dptrain::mpi_test {

// A small model with dropout and augmentation (keyed by global sample index) on a synthetic set whose size
// is not a multiple of the global batch, whose batch does not split evenly over 2 or 3 workers. Float
// sums (train.reproducible: false): these tests check the float all-reduce path, equal up to rounding.
inline const std::string kConfig = R"(
name: invariance
seed: 11
threads: 1
data: {type: synthetic, train_samples: 1010, test_samples: 203, shape: [1, 8, 8], classes: 3, noise: 2.0,
       augment: {crop_padding: 1, horizontal_flip: true}}
)" + test_util::kSmallCnnModel + R"(optimizer: {type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.0001}
lr_schedule: {type: cosine, warmup_epochs: 1}
comm: {bucket_mb: 0.001}
train: {batch_size: 25, epochs: 3, reproducible: false}
)";

// The ranks [0, workers) of MPI_COMM_WORLD as one communicator; null on the other ranks. Collective.
inline std::unique_ptr<MpiCommunicator> first_ranks(size_t workers) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const bool member = static_cast<size_t>(rank) < workers;
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, member ? 0 : MPI_UNDEFINED, rank, &sub);
  if (!member) return nullptr;
  auto comm = std::make_unique<MpiCommunicator>(sub);
  MPI_Comm_free(&sub);
  return comm;
}

inline size_t world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return static_cast<size_t>(size);
}

inline bool is_root() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank == 0;
}

using test_util::relative_difference;

}  // namespace dptrain::mpi_test
