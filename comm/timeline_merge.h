// The collective ends of a Timeline (runtime/report/timeline.h): a common start, one merged file.
#pragma once

#include <cstddef>
#include <string>

#include "comm/communicator.h"
#include "runtime/report/timeline.h"

namespace dptrain {

// Aligns the ranks: a barrier, then every rank takes "now" as its origin. Collective.
void start_timeline(Timeline& timeline, Communicator& comm, Deadline deadline);

// Collective: every rank sends its events to rank 0, which writes one JSON file at `path` with them
// and those of the workers that left (Timeline::departed). Returns the number of events written
// (on rank 0; 0 elsewhere).
size_t write_merged_timeline(const Timeline& timeline, Communicator& comm, const std::string& path, Deadline deadline);

}  // namespace dptrain
