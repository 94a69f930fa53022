#include "comm/timeline_merge.h"

#include <utility>
#include <vector>

namespace dptrain {

void start_timeline(Timeline& timeline, Communicator& comm, Deadline deadline) {
  comm.barrier(deadline);
  timeline.start(comm.rank());
}

size_t write_merged_timeline(const Timeline& timeline, Communicator& comm, const std::string& path, Deadline deadline) {
  const size_t rank = comm.rank();
  std::vector<std::string> all = comm.gather_bytes(timeline.merge_payload(rank), 0, deadline);
  if (rank != 0) return 0;
  for (std::string& gone : timeline.departed()) all.push_back(std::move(gone));
  return write_timeline_file(all, comm.size(), path);
}

}  // namespace dptrain
