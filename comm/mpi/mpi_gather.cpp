#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>

#include "comm/mpi/mpi_communicator.h"
#include "runtime/core/errors.h"

namespace dptrain {

namespace {

using Clock = std::chrono::steady_clock;

// The most bytes one rank sends in one round of gather_bytes.
constexpr uint64_t kGatherChunkBytes = uint64_t{64} << 20;

}  // namespace

std::vector<std::string> MpiCommunicator::gather_bytes(const std::string& send, size_t root, Deadline deadline) {
  if (root >= size_) {
    throw CommError(mpi_where() + ": gather to rank " + std::to_string(root) + " in a world of " + std::to_string(size_));
  }
  const auto limit = Clock::now() + deadline;
  auto left = [&] { return std::max(Deadline(0), std::chrono::duration_cast<Deadline>(limit - Clock::now())); };
  // Sizes first, so that the root knows where every rank's bytes go.
  const uint64_t mine = send.size();
  std::vector<uint64_t> sizes(size_);
  all_gather(&mine, sizeof(mine), sizes.data(), left());
  std::vector<std::string> result;
  if (rank_ == root) {
    result.resize(size_);
    for (size_t r = 0; r < size_; ++r) result[r].reserve(sizes[r]);
  }
  // Rounds of MPI_Igatherv moving at most `chunk` bytes per rank, so that counts and
  // displacements stay within int.
  const uint64_t chunk = std::max<uint64_t>(1, std::min<uint64_t>(kGatherChunkBytes, INT_MAX / size_));
  uint64_t largest = 0;
  for (uint64_t n : sizes) largest = std::max(largest, n);
  std::vector<int> counts(size_), displacements(size_);
  std::vector<char> buffer;
  for (uint64_t offset = 0; offset < largest; offset += chunk) {
    int total = 0;
    for (size_t r = 0; r < size_; ++r) {
      counts[r] = static_cast<int>(sizes[r] > offset ? std::min(chunk, sizes[r] - offset) : 0);
      displacements[r] = total;
      total += counts[r];
    }
    if (rank_ == root) buffer.resize(static_cast<size_t>(total) + 1);
    MPI_Request r;
    DPTRAIN_MPI_CHECK(MPI_Igatherv(send.data() + std::min<uint64_t>(offset, send.size()), counts[rank_], MPI_BYTE,
                                   buffer.data(), counts.data(), displacements.data(), MPI_BYTE,
                                   static_cast<int>(root), comm_, &r));
    wait(&r, left(), "gather of " + std::to_string(mine) + " bytes to rank " + std::to_string(root));
    if (rank_ == root) {
      for (size_t q = 0; q < size_; ++q) result[q].append(buffer.data() + displacements[q], counts[q]);
    }
  }
  return result;
}

}  // namespace dptrain
