#include <cstring>

#include "comm/communicator.h"
#include "runtime/core/errors.h"

namespace dptrain {

std::unique_ptr<CommRequest> SingleProcessCommunicator::all_reduce_sum_async(float*, size_t) {
  return std::make_unique<FinishedRequest>();
}

void SingleProcessCommunicator::broadcast(void*, size_t, size_t root, Deadline) {
  if (root != 0) throw CommError("backend single does not support broadcast from rank " + std::to_string(root));
}

void SingleProcessCommunicator::all_gather(const void* send, size_t bytes_each, void* recv, Deadline) {
  if (bytes_each) std::memcpy(recv, send, bytes_each);
}

std::vector<std::string> SingleProcessCommunicator::gather_bytes(const std::string& send, size_t root, Deadline) {
  if (root != 0) throw CommError("backend single does not support gather to rank " + std::to_string(root));
  return {send};
}

}  // namespace dptrain
