// Communicator: collective operations among the workers of one job, behind one interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/all_reducer.h"

namespace dptrain {

// Collectives over host buffers. Implementations: SingleProcessCommunicator (below) and
// MpiCommunicator (comm/mpi/mpi_communicator.h); NCCL follows the same interface. An
// operation a backend lacks throws CommError "backend X does not support Y". The float sum of
// AllReducer (size(), all_reduce_sum_async) is part of it.
class Communicator : public AllReducer {
 public:
  virtual const char* backend() const = 0;
  virtual size_t rank() const = 0;
  // In-place sum of doubles (metrics), blocking with a deadline.
  virtual void all_reduce_sum(double* data, size_t count, Deadline deadline) = 0;
  // Starts an in-place sum of 64-bit integers (exact gradient sums, train.reproducible) in host
  // memory: exact in any order. This default serves one worker (nothing to sum) and throws CommError
  // otherwise; MPI starts it in the background.
  virtual std::unique_ptr<CommRequest> all_reduce_int64_async(int64_t* data, size_t count);
  // Copies `bytes` bytes at `data` from `root` to every worker.
  virtual void broadcast(void* data, size_t bytes, size_t root, Deadline deadline) = 0;
  virtual void barrier(Deadline deadline) = 0;
  // Gathers `bytes_each` bytes from every worker into `recv` (size() * bytes_each bytes, in rank order).
  virtual void all_gather(const void* send, size_t bytes_each, void* recv, Deadline deadline) = 0;
  // Gathers a different number of bytes from every worker to `root`. On `root` the result holds
  // every rank's bytes in rank order; elsewhere it is empty. The default implementation uses
  // all_gather (sizes, then every rank's bytes padded to the largest); backends override it.
  virtual std::vector<std::string> gather_bytes(const std::string& send, size_t root, Deadline deadline);

  // Blocking in-place float sum: start and wait.
  void all_reduce_sum(float* data, size_t count, Deadline deadline) { all_reduce_sum_async(data, count)->wait(deadline); }
};

// The communicator of a job with one worker: every collective is the identity.
class SingleProcessCommunicator final : public Communicator {
 public:
  using Communicator::all_reduce_sum;
  const char* backend() const override { return "single"; }
  size_t rank() const override { return 0; }
  size_t size() const override { return 1; }
  std::unique_ptr<CommRequest> all_reduce_sum_async(float* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count, Deadline deadline) override {}
  void broadcast(void* data, size_t bytes, size_t root, Deadline deadline) override;
  void barrier(Deadline deadline) override {}
  void all_gather(const void* send, size_t bytes_each, void* recv, Deadline deadline) override;
  std::vector<std::string> gather_bytes(const std::string& send, size_t root, Deadline deadline) override;
};

}  // namespace dptrain
