#include "comm/communicator.h"

#include <algorithm>
#include <cstdint>

#include "runtime/core/errors.h"

namespace dptrain {

std::unique_ptr<CommRequest> Communicator::all_reduce_int64_async(int64_t*, size_t) {
  if (size() > 1) throw CommError(std::string("backend ") + backend() + " does not support an all-reduce of int64");
  return std::make_unique<FinishedRequest>();
}

std::vector<std::string> Communicator::gather_bytes(const std::string& send, size_t root, Deadline deadline) {
  if (root >= size()) {
    throw CommError(std::string("backend ") + backend() + ": gather to rank " + std::to_string(root) +
                    " in a world of " + std::to_string(size()));
  }
  const auto limit = std::chrono::steady_clock::now() + deadline;
  auto left = [&] {
    return std::max(Deadline(0), std::chrono::duration_cast<Deadline>(limit - std::chrono::steady_clock::now()));
  };
  const uint64_t mine = send.size();
  std::vector<uint64_t> sizes(size());
  all_gather(&mine, sizeof(mine), sizes.data(), left());
  const uint64_t largest = *std::max_element(sizes.begin(), sizes.end());
  std::string padded = send;
  padded.resize(largest);
  std::string all(largest * size(), '\0');
  if (largest) all_gather(padded.data(), largest, all.data(), left());
  std::vector<std::string> result;
  if (rank() != root) return result;
  for (size_t r = 0; r < size(); ++r) result.push_back(all.substr(r * largest, sizes[r]));
  return result;
}

}  // namespace dptrain
